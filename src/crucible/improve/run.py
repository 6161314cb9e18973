"""`crucible run RECIPE --out RUN`: run a recipe's stages in order, each in RUN/<stage>/, resumably.

State: RUN/run.json records, per finished stage, the fingerprint of its recipe table. A re-run
skips finished stages (their gates are checked again: a failed gate fails again); a stage that was
killed runs again in its directory, where the command resumes itself (eval, mine and probes keep
append-only files; pretrain gets --resume when a checkpoint is there). A recipe whose finished
stages changed is refused (`RunError` names the first changed stage) unless `force` names a stage
at or before it: that stage and every later one are redone, their old directories moved to
RUN/.replaced/. Stages added at the end of a recipe simply run.

After each stage its results (summary.json, probes.json, vote.json, compare.json in its directory;
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
from pathlib import Path

from crucible.improve.gates import RESULT_FILES, GateFailed, enforce, metrics_from_paths, parse_gate
from crucible.improve.recipe import Recipe, Stage, resolve, to_argv
from crucible.io import appending, atomic_write, read_jsonl

STATE = "run.json"
EVAL_RESULTS = "eval_results.jsonl"
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


def plan(recipe: Recipe, state: dict, force: str | None) -> list[Stage]:
    """The stages to redo from scratch (force), after checking that finished stages still match."""
    done = state["stages"]
    names = recipe.names()
    changed = [s for s in recipe.stages if s.name in done and done[s.name]["fingerprint"] != s.fingerprint]
    dropped = [name for name in done if name not in names]
    if force is not None and force not in names:
        raise RunError(f"--force {force}: no such stage in {recipe.path} (stages: {', '.join(names)})")
    first = min([names.index(s.name) for s in changed] or [len(names)])
    if dropped and force is None:
        raise RunError(f"{recipe.path}: finished stage(s) {', '.join(dropped)} are no longer in the recipe; "
                       "use another --out")
    if changed and (force is None or names.index(force) > first):
        stage = recipe.stages[first]
        was = done[stage.name].get("table", {})
        diff = sorted(k for k in set(was) | set(stage.table()) if was.get(k) != stage.table().get(k))
        raise RunError(f"{recipe.path}:{stage.line}: stage {stage.name!r} changed since it ran in this RUN "
                       f"({', '.join(diff) or 'its table'}); pass --force {stage.name} to redo it and the stages "
                       "after it, or use another --out")
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


def run_stage(stage: Stage, run: Path, places: dict[str, str], cli_main: Callable[[list[str]], int]) -> None:
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


def run_recipe(recipe: Recipe, run: str | Path, cli_main: Callable[[list[str]], int], *, force: str | None = None,
               log=print) -> dict:
    """Run what is not done with `cli_main` (crucible's CLI entry point, handed in by the command);
    returns the state. Raises RunError or GateFailed."""
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    state = load_state(run)
    retire(run, plan(recipe, state, force), state)
    state["recipe"] = str(recipe.path)
    save_state(run, state)
    places = {"run": str(run), **recipe.vars, **{s.name: str(run / s.name) for s in recipe.stages}}
    results = run / EVAL_RESULTS
    rows = read_jsonl(results, repair=True) if results.exists() else []
    recorded = {(r["stage"], r.get("finished")) for _, r in rows}
    for stage in recipe.stages:
        finished = stage.name in state["stages"]
        if finished:
            log(f"[run] {stage.name}: finished earlier, skipped")
        else:
            log(f"[run] {stage.name}: {stage.kind}")
            run_stage(stage, run, places, cli_main)
        metrics = stage_metrics(stage, run, places)
        checks = []
        try:
            checks = enforce([parse_gate(g) for g in stage.gates], metrics) if stage.gates else []
        except GateFailed as e:
            checks, e.stage = e.checks, stage.name
            raise
        finally:
            if not finished:
                state["stages"][stage.name] = {"fingerprint": stage.fingerprint, "table": stage.table(),
                                               "finished": time.strftime("%Y-%m-%dT%H:%M:%S")
                                               + f".{time.time_ns() % 10**9:09d}"}
                save_state(run, state)
            stamp = state["stages"][stage.name]["finished"]
            if (stage.name, stamp) not in recorded:  # once per finish, even if a kill fell between the writes
                with appending(results) as f:
                    f.write({"stage": stage.name, "kind": stage.kind, "finished": stamp, "metrics": metrics,
                             "gates": checks})
                recorded.add((stage.name, stamp))
    return state
