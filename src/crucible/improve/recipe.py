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
Two kinds are the runner's own: `compare` (keys `a` and `b`: two eval directories; writes
compare.json) and `gate` (key `metrics`: result files or directories to read). Retrain-from-base
versus continue is a `[vars]` switch: point the next round's `model` at the base or at the last round.

Errors name the recipe file and the line of the offending stage (`RecipeError`).

Not covered: loops (write each round's stages out; a recipe is a plain list), conditions.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from crucible.improve.gates import GateError, parse_gate

OWN_KINDS = ("compare", "gate")
RESERVED = ("name", "kind", "args", "gates")
MACHINE = ("ray",)  # flags that say where a stage runs, not what it computes
PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w-]*)\}")
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

    @property
    def fingerprint(self) -> str:
        """What the stage's output depends on: not its gates (they are checked again on every run),
        nor where it runs (MACHINE flags: a Ray run gives the rows a local one does)."""
        raw = {"kind": self.kind, "args": self.args, "flags": tuple(f for f in self.flags if f[0] not in MACHINE)}
        return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def table(self) -> dict:
        return {"kind": self.kind, "args": list(self.args), **dict(self.flags)}


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
    for stage in stages:  # every placeholder must name a var or an earlier stage
        earlier = set(recipe.names()[:recipe.names().index(stage.name)])
        for value in [*stage.args, *(v for _, v in stage.flags)]:
            for item in value if isinstance(value, list) else [value]:
                for name in PLACEHOLDER.findall(str(item)):
                    if name != "run" and name not in recipe.vars and name not in earlier:
                        raise RecipeError(f"{path}:{stage.line}: stage {stage.name!r}: {{{name}}} is neither a "
                                          "[vars] name nor an earlier stage")
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
    return Stage(name, kind, tuple(str(a) for a in args), tuple(flags), tuple(gates), line)


def resolve(value, places: dict[str, str]):
    """Placeholders replaced: {run}, [vars] names and earlier stages' directories."""
    if isinstance(value, list):
        return [resolve(v, places) for v in value]
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: places[m.group(1)], value)
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
