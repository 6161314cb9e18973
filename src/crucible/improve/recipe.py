"""Run recipes: the stages of an improve loop written as data, checked before anything runs.

    [vars]
    model = "runs/base"                   # {model} anywhere below

    [[stage]]
    name = "heldout"                      # output in RUN/heldout/; {heldout} names that directory
    kind = "world"                        # a crucible command: world, eval, mine, sft, ... or compare, gate
    levels = "3"                          # every other key is the command's flag (--levels 3)
    split = "heldout"

    [[stage]]
    name = "eval0"
    kind = "eval"
    args = ["world"]                      # positional arguments
    tasks = "{heldout}/tasks.jsonl"
    model = "native:{model}"
    gates = ["pass@1 >= 0.05"]            # checked on this stage's results (crucible.improve.gates)

Flags: a string or number becomes `--key value`, true becomes `--key`, false is left out, a list
repeats the flag. The runner adds `--out RUN/<name>` (world: `--out RUN/<name>/tasks.jsonl`), and
`crucible run --ray ADDRESS` adds `--ray ADDRESS` to the stages whose command takes it; a stage may
set `ray = "auto"` itself. `ray` is not part of a stage's fingerprint: moving a finished stage's
recipe onto a cluster, or off it, does not redo it.
Three kinds are the runner's own: `compare` (keys `a` and `b`: two eval directories; writes
compare.json), `gate` (key `metrics`: result files or directories to read) and `curriculum` (keys
`results`: a graded directory, `level`: the level it sampled, optional `lowest`/`highest`: the
ladder, 1..5 by default; writes decision.json: harder / mine / easier, see crucible.improve.curriculum).
Retrain-from-base versus continue is a `[vars]` switch: point the next round's `model` at the base
or at the last round.

Branching on what a stage found (crucible.improve.values): `{stage.key}` is a value from a finished
stage's JSON output (`levels = "{cur1.next_level}"`), read when the stage is about to run; `when =
"cur1.action == 'mine'"` runs a stage only if the condition holds, else records it as skipped. A
stage's fingerprint is taken over its resolved keys ([vars] and values filled in; directories stay
placeholders, so a moved RUN still resumes): a changed upstream decision shows as a changed stage.

Errors name the recipe file and the line of the offending stage (`RecipeError`).

Not covered: loops. A `repeat` block (rounds 1..N with `{round}`) would be a text macro over stage
names: --force, the run report and error lines would then name stages that are not in the file.
Write each round's stages out (examples: recipes/curriculum.toml); the branches above decide per round.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from crucible.improve.gates import GateError, parse_gate
from crucible.improve.values import StageValueError, check_key, parse_condition

OWN_KINDS = ("compare", "gate", "curriculum")
CURRICULUM_KEYS = ("results", "level", "lowest", "highest")
RESERVED = ("name", "kind", "args", "gates", "when")
MACHINE = ("ray",)  # flags that say where a stage runs, not what it computes
PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w-]*)((?:\.[\w@-]+)*)\}")  # {name} or {stage.key.path}
STAGE_NAME = re.compile(r"[A-Za-z_][\w-]*")


class RecipeError(ValueError):
    """A recipe that cannot run; the message names the file and line."""


@dataclass(frozen=True)
class Stage:
    name: str
    kind: str
    args: tuple[str, ...]
    flags: tuple[tuple[str, object], ...]
    gates: tuple[str, ...]
    line: int
    when: str | None = None

    @property
    def fingerprint(self) -> str:
        """What the stage's output depends on: not its gates (they are checked again on every run),
        nor where it runs (MACHINE flags: a Ray run gives the rows a local one does). Taken on the
        resolved stage (`improve.run`), whose `when` carries the value it saw."""
        raw = {"kind": self.kind, "args": self.args, "flags": tuple(f for f in self.flags if f[0] not in MACHINE)}
        if self.when is not None:
            raw["when"] = self.when
        return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def table(self) -> dict:
        return {"kind": self.kind, "args": list(self.args), **dict(self.flags),
                **({"when": self.when} if self.when is not None else {})}

    def references(self) -> list[tuple[str, str]]:
        """(name, key) of every placeholder and of the condition; key "" for {name}."""
        found = []
        for value in [*self.args, *(v for _, v in self.flags)]:
            for item in value if isinstance(value, list) else [value]:
                found += [(name, key.lstrip(".")) for name, key in PLACEHOLDER.findall(str(item))]
        if self.when is not None:
            condition = parse_condition(self.when)
            found.append((condition.stage, condition.key))
        return found


@dataclass(frozen=True)
class Recipe:
    path: Path
    vars: dict[str, str]
    stages: tuple[Stage, ...]

    def names(self) -> list[str]:
        return [s.name for s in self.stages]


def load_run_recipe(path: str | Path, kinds) -> Recipe:
    """Read and check a recipe; `kinds` are the stage kinds that can run here (command names)."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: no such recipe")
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: not valid TOML ({e})") from None
    unknown = sorted(set(raw) - {"vars", "stage"})
    if unknown:
        raise RecipeError(f"{path}: unknown table(s) {', '.join(unknown)} (a recipe has [vars] and [[stage]])")
    variables = raw.get("vars", {})
    if not all(isinstance(v, (str, int, float)) for v in variables.values()):
        raise RecipeError(f"{path}: [vars] values must be strings or numbers")
    headers = [i for i, line in enumerate(text.splitlines(), 1) if line.strip() == "[[stage]]"]
    stages: list[Stage] = []
    for i, table in enumerate(raw.get("stage", [])):
        where = f"{path}:{headers[i] if i < len(headers) else 1}"
        stages.append(parse_stage(table, where, kinds, headers[i] if i < len(headers) else 1))
        if stages[-1].name in variables or stages[-1].name in [s.name for s in stages[:-1]]:
            raise RecipeError(f"{where}: stage name {stages[-1].name!r} is already a stage or a [vars] name")
    if not stages:
        raise RecipeError(f"{path}: no [[stage]] tables")
    recipe = Recipe(path, {k: str(v) for k, v in variables.items()}, tuple(stages))
    for stage in stages:  # a placeholder names a var or an earlier stage; {stage.key} a value it writes
        earlier = {s.name: s.kind for s in stages[:stages.index(stage)]}
        for name, key in stage.references():
            where = f"{path}:{stage.line}: stage {stage.name!r}"
            if not key and name != "run" and name not in recipe.vars and name not in earlier:
                raise RecipeError(f"{where}: {{{name}}} is neither a [vars] name nor an earlier stage")
            if key and name not in earlier:
                raise RecipeError(f"{where}: {name}.{key} does not name an earlier stage")
            if key:
                try:
                    check_key(name, earlier[name], key)
                except StageValueError as e:
                    raise RecipeError(f"{where}: {e}") from None
    return recipe


def parse_stage(table: dict, where: str, kinds, line: int) -> Stage:
    name, kind = table.get("name"), table.get("kind")
    if not isinstance(name, str) or not STAGE_NAME.fullmatch(name) or name == "run":
        raise RecipeError(f"{where}: 'name' must be a word of letters, digits, _ or - (not 'run')")
    if kind not in kinds:
        raise RecipeError(f"{where}: stage {name!r}: kind {kind!r} is not one of {', '.join(sorted(kinds))}")
    args = table.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, (str, int, float)) for a in args):
        raise RecipeError(f"{where}: stage {name!r}: 'args' must be a list of strings")
    gates = table.get("gates", [])
    if not isinstance(gates, list):
        raise RecipeError(f"{where}: stage {name!r}: 'gates' must be a list of strings")
    for g in gates:
        try:
            parse_gate(g)
        except GateError as e:
            raise RecipeError(f"{where}: stage {name!r}: {e}") from None
    when = table.get("when")
    if when is not None:
        try:
            parse_condition(when)
        except StageValueError as e:
            raise RecipeError(f"{where}: stage {name!r}: {e}") from None
    flags = []
    for key, value in table.items():
        if key in RESERVED:
            continue
        scalars = isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value)
        if isinstance(value, dict) or (isinstance(value, list) and not scalars):
            raise RecipeError(f"{where}: stage {name!r}: {key!r} must be a string, number, boolean or list of them")
        flags.append((key, value))
    if kind == "compare" and not {"a", "b"} <= {k for k, _ in flags}:
        raise RecipeError(f"{where}: stage {name!r}: a compare stage needs 'a' and 'b' (two eval directories)")
    if kind == "gate" and (not gates or "metrics" not in {k for k, _ in flags}):
        raise RecipeError(f"{where}: stage {name!r}: a gate stage needs 'gates' and 'metrics'")
    if kind == "curriculum":
        keys = {k for k, _ in flags}
        if not {"results", "level"} <= keys or keys - set(CURRICULUM_KEYS):
            raise RecipeError(f"{where}: stage {name!r}: a curriculum stage takes 'results' (a graded directory) "
                              f"and 'level', optionally 'lowest' and 'highest'; got {', '.join(sorted(keys))}")
    return Stage(name, kind, tuple(str(a) for a in args), tuple(flags), tuple(gates), line, when)


def resolve(value, places: dict[str, str], *, partial: bool = False):
    """Placeholders replaced: {run}, [vars] names, earlier stages' directories and values ("stage.key").
    With `partial`, placeholders not in `places` are left as they are."""
    if isinstance(value, list):
        return [resolve(v, places, partial=partial) for v in value]
    if isinstance(value, str):
        def place(m):
            name = m.group(1) + m.group(2)
            return places[name] if name in places or not partial else m.group(0)
        return PLACEHOLDER.sub(place, value)
    return value


def to_argv(stage: Stage, places: dict[str, str]) -> list[str]:
    """The stage's command line (without --out), placeholders resolved."""
    argv = [stage.kind, *resolve(list(stage.args), places)]
    for key, value in stage.flags:
        flag = "--" + key.replace("_", "-")
        value = resolve(value, places)
        if value is True:
            argv.append(flag)
        elif value is False:
            continue
        elif isinstance(value, list):
            for v in value:
                argv += [flag, str(v)]
        else:
            argv += [flag, str(value)]
    return argv
