"""`crucible run RECIPE --out RUN`: run a recipe's stages in order, each in RUN/<stage>/, resumably.

State: RUN/run.json records, per finished stage, the fingerprint of its recipe table. A re-run
skips finished stages (their gates are checked again: a failed gate fails again); a stage that was
killed runs again in its directory, where the command resumes itself (eval, mine and probes keep
append-only files; pretrain gets --resume when a checkpoint is there). A recipe whose finished
stages changed is refused (`RunError` names the first changed stage) unless `force` names a stage
at or before it: that stage and every later one are redone, their old directories moved to
RUN/.replaced/. Stages added at the end of a recipe simply run. Fingerprints are taken on the
resolved stage (`prepare`: [vars] and `{stage.key}` values filled in), so a finished stage whose
upstream decision changed counts as changed. A stage whose `when` is false is recorded in run.json
as skipped, with the reason (the condition and the value it saw); its row in eval_results.jsonl says
so, its gates are not checked, and a later stage that refers to it is an error naming it.

A curriculum stage writes RUN/<stage>/decision.json (`improve.curriculum.decide`) and appends it to
RUN/curriculum.jsonl (flushed), exactly once per finish as eval_results.jsonl: one line per round.

After each stage its results (summary.json, probes.json, vote.json, compare.json, decision.json in its directory;
a gate stage reads its `metrics`) become gate metrics, and one row is appended to
RUN/eval_results.jsonl (flushed): stage, kind, when it finished, metrics, gate checks — exactly one
per finish (a kill between recording the finish and appending the row is caught up on the re-run). A failed gate raises
GateFailed: the command exits 3 saying which gate and by how much.

Stages run in this process through crucible's own CLI (`crucible.cli.main`, handed in by the
command: this room does not import the command layer), so a stage is exactly the command a user
would type; `run_stage` is the one place that knows the runner's own kinds.

Not covered: running stages in parallel, or on other machines.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from crucible.improve.curriculum import CurriculumError, decide, describe
from crucible.improve.gates import RESULT_FILES, GateFailed, enforce, metrics_from_paths, parse_gate
from crucible.improve.recipe import Recipe, Stage, resolve, to_argv
from crucible.improve.values import StageValueError, VALUE_FILES, as_text, parse_condition, read_value
from crucible.io import appending, atomic_write, read_jsonl

STATE = "run.json"
EVAL_RESULTS = "eval_results.jsonl"
CURRICULUM_LOG = "curriculum.jsonl"
OUT_FILE = {"world": "tasks.jsonl"}          # kinds whose --out is a file inside the stage directory
RESUME = {"pretrain": ("latest", "--resume")}  # kinds that continue only when told to
NO_OUT = ("report", "gate")          # kinds that read directories instead of writing their own


class RunError(ValueError):
    """The run cannot go on as asked (a changed recipe, a failed stage)."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def load_state(run: Path) -> dict:
    path = run / STATE
    return json.loads(path.read_text()) if path.exists() else {"stages": {}}


def save_state(run: Path, state: dict) -> None:
    atomic_write(run / STATE, json.dumps(state, indent=2) + "\n")


def prepare(stage: Stage, recipe: Recipe, run: Path, state: dict) -> tuple[Stage, str | None]:
    """The stage with [vars] and values from finished stages filled in (directories stay placeholders),
    and why it is skipped (None: it runs). The condition is read first: a skipped stage's other
    references are left as they are. RunError names the recipe line: a value not there, or a
    reference to a skipped stage."""
    where = f"{recipe.path}:{stage.line}: stage {stage.name!r}"
    kinds = {s.name: s.kind for s in recipe.stages}

    def value(name: str, key: str):
        skipped = state["stages"].get(name, {}).get("skipped")
        if skipped:
            raise RunError(f"{where}: refers to {{{name}{'.' + key if key else ''}}}, but stage {name!r} "
                           f"was skipped ({skipped})")
        return read_value(run / name, kinds[name], key) if key else None

    values, when, skip = {}, stage.when, None
    try:
        if stage.when is not None:
            condition = parse_condition(stage.when)
            seen = value(condition.stage, condition.key)
            when = f"{condition.text} ({condition.stage}.{condition.key} = {seen!r})"
            skip = None if condition.holds(seen) else f"{when} is false"
        for name, key in [] if skip else stage.references():
            values[f"{name}.{key}"] = value(name, key)
    except StageValueError as e:
        raise RunError(f"{where}: {e}") from None
    fill = {**recipe.vars, **{k: as_text(v) for k, v in values.items() if v is not None}}
    resolved = replace(stage, args=tuple(resolve(list(stage.args), fill, partial=True)), when=when,
                       flags=tuple((k, resolve(v, fill, partial=True)) for k, v in stage.flags))
    for key, given in resolved.flags if stage.kind == "curriculum" and skip is None else []:
        if key != "results" and not (isinstance(given, int) or (isinstance(given, str) and given.strip().isdigit())):
            raise RunError(f"{where}: {key!r} must be a whole number, got {given!r}")
    return resolved, skip


def plan(recipe: Recipe, state: dict, force: str | None, resolved) -> list[Stage]:
    """The stages to redo from scratch (force), after checking that finished stages still match;
    `resolved(stage)` is the stage as it would run now (`prepare`)."""
    done = state["stages"]
    names = recipe.names()
    dropped = [name for name in done if name not in names]
    if force is not None and force not in names:
        raise RunError(f"--force {force}: no such stage in {recipe.path} (stages: {', '.join(names)})")
    if dropped and force is None:
        raise RunError(f"{recipe.path}: finished stage(s) {', '.join(dropped)} are no longer in the recipe; "
                       "use another --out")
    for stage in recipe.stages[:names.index(force) if force is not None else len(names)]:
        now = resolved(stage) if stage.name in done else None
        if now is not None and done[stage.name]["fingerprint"] != now.fingerprint:
            was = done[stage.name].get("table", {})
            diff = sorted(k for k in set(was) | set(now.table()) if was.get(k) != now.table().get(k))
            raise RunError(f"{recipe.path}:{stage.line}: stage {stage.name!r} changed since it ran in this RUN "
                           f"({', '.join(diff) or 'its table'}); pass --force {stage.name} to redo it and the "
                           "stages after it, or use another --out")
    return list(recipe.stages[names.index(force):]) if force is not None else []


def retire(run: Path, stages: list[Stage], state: dict) -> None:
    """Move the stages' old outputs to RUN/.replaced/ and forget that they finished."""
    for stage in stages:
        old = run / stage.name
        if old.exists():
            target = run / ".replaced" / f"{stage.name}-{time.strftime('%Y%m%d-%H%M%S')}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(old), str(target))
        state["stages"].pop(stage.name, None)


def stage_metrics(stage: Stage, run: Path, places: dict[str, str]) -> dict[str, float]:
    """Gate metrics from the stage's own results, or (gate stages) from the files it names."""
    if stage.kind != "gate":
        out = run / stage.name
        return metrics_from_paths([out / f for f in RESULT_FILES if (out / f).is_file()])
    given = resolve(dict(stage.flags)["metrics"], places)
    return metrics_from_paths(given if isinstance(given, list) else [given])


def run_stage(stage: Stage, run: Path, places: dict[str, str], cli_main: Callable[[list[str]], int],
              log=print) -> None:
    """Run one stage to completion in RUN/<stage>/ (raises RunError if its command fails)."""
    out = run / stage.name
    out.mkdir(parents=True, exist_ok=True)
    if stage.kind == "compare":
        from crucible.improve.compare import compare_rows
        from crucible.report.build import load_rows

        flags = dict(stage.flags)
        a, b = resolve(flags["a"], places), resolve(flags["b"], places)
        result = {**compare_rows(load_rows(a), load_rows(b), seed=int(flags.get("seed", 0))), "runs": {"a": a, "b": b}}
        atomic_write(out / "compare.json", json.dumps(result, indent=2) + "\n")
        return
    if stage.kind == "curriculum":
        decide_level(stage, out, places, log)
        return
    if stage.kind == "gate":
        return
    argv = to_argv(stage, places)
    if stage.kind not in NO_OUT:
        argv += ["--out", str(out / OUT_FILE[stage.kind]) if stage.kind in OUT_FILE else str(out)]
    marker = RESUME.get(stage.kind)
    if marker and (out / marker[0]).exists():
        argv.append(marker[1])
    code = cli_main(argv)
    if code != 0:
        raise RunError(f"stage {stage.name!r} (crucible {' '.join(argv)}) exited with code {code}", code)


def decide_level(stage: Stage, out: Path, places: dict[str, str], log) -> None:
    """A curriculum stage: the decision on its `results` at its `level`, in decision.json."""
    from crucible.report.build import load_rows

    flags = dict(stage.flags)
    results = resolve(flags["results"], places)
    ladder = {k: int(flags[k]) for k in ("lowest", "highest") if k in flags}
    try:
        decision = decide(load_rows(results), int(flags["level"]), **ladder)
    except CurriculumError as e:
        raise RunError(f"stage {stage.name!r}: {results}: {e}") from None
    decision = {"stage": stage.name, "results": results, **decision}
    log(describe(decision))
    atomic_write(out / VALUE_FILES["curriculum"], json.dumps(decision, indent=2) + "\n")


def finished_rows(path: Path) -> set[tuple[str, str]]:
    """(stage, finished) of the rows already in an append-only file of the run."""
    return {(r["stage"], r.get("finished")) for _, r in read_jsonl(path, repair=True)} if path.exists() else set()


def run_recipe(recipe: Recipe, run: str | Path, cli_main: Callable[[list[str]], int], *, force: str | None = None,
               log=print) -> dict:
    """Run what is not done with `cli_main` (crucible's CLI entry point, handed in by the command);
    returns the state. Raises RunError or GateFailed."""
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    state = load_state(run)
    retire(run, plan(recipe, state, force, lambda s: prepare(s, recipe, run, state)[0]), state)
    state["recipe"] = str(recipe.path)
    save_state(run, state)
    places = {"run": str(run), **recipe.vars, **{s.name: str(run / s.name) for s in recipe.stages}}
    results, rounds = run / EVAL_RESULTS, run / CURRICULUM_LOG
    recorded = {results: finished_rows(results), rounds: finished_rows(rounds)}
    for stage in recipe.stages:
        entry = state["stages"].get(stage.name)
        if entry is None:
            resolved, skip = prepare(stage, recipe, run, state)
            log(f"[run] {stage.name}: skipped: {skip}" if skip else f"[run] {stage.name}: {stage.kind}")
            if not skip:
                run_stage(resolved, run, places, cli_main, log)
        else:
            skip = entry.get("skipped")
            resolved = stage if skip else prepare(stage, recipe, run, state)[0]
            log(f"[run] {stage.name}: " + (f"skipped earlier: {skip}" if skip else "finished earlier, skipped"))
        metrics, checks = {}, []
        try:
            metrics = {} if skip else stage_metrics(resolved, run, places)
            checks = enforce([parse_gate(g) for g in stage.gates], metrics) if stage.gates and not skip else []
        except GateFailed as e:
            checks, e.stage = e.checks, stage.name
            raise
        finally:
            if entry is None:
                entry = state["stages"][stage.name] = {
                    "fingerprint": resolved.fingerprint, "table": resolved.table(),
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S") + f".{time.time_ns() % 10**9:09d}",
                    **({"skipped": skip} if skip else {})}
                save_state(run, state)
            row = {"stage": stage.name, "kind": stage.kind, "finished": entry["finished"], "metrics": metrics,
                   "gates": checks, **({"skipped": skip} if skip else {})}
            append_once(results, row, recorded[results])
            if stage.kind == "curriculum" and not skip:
                decision = json.loads((run / stage.name / VALUE_FILES["curriculum"]).read_text())
                append_once(rounds, {**decision, "finished": entry["finished"]}, recorded[rounds])
    return state


def append_once(path: Path, row: dict, recorded: set) -> None:
    """Append the row unless this finish of the stage is there already (a kill may fall between the
    state's write and this one: the re-run catches it up)."""
    if (row["stage"], row["finished"]) not in recorded:
        with appending(path) as f:
            f.write(row)
        recorded.add((row["stage"], row["finished"]))
