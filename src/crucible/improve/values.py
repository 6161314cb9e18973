"""Values from finished stages, for the stages after them: `{stage.key}` placeholders and `when`.

    levels = "{cur1.next_level}"        # read from RUN/cur1/decision.json when this stage is about to run
    when = "cur1.action == 'mine'"      # false: the stage is skipped, and the skip is recorded with why

`{stage.key}` reads exactly one file in RUN/<stage>/, chosen by that stage's kind (VALUE_FILES): a
curriculum stage's decision.json, a compare stage's compare.json, an eval stage's summary.json,
mine's mine.json, vote's vote.json, probes' probes.json. The key is a dotted path into that JSON
object (`{cur1.tasks.some}`, `{eval1.pass@k.1}`) and must end at a string, number or boolean. A
curriculum stage's keys are the runner's own (DECISION_KEYS), so an unknown one is refused before
anything runs; the other kinds' keys are checked when the value is read.

A condition is `STAGE.KEY OP LITERAL`: OP one of the gates' operators, LITERAL a number or a quoted
string (strings compare with == and != only). Like a gate it is read by a regular expression, never
eval(): recipes are data, and one comparison per stage covers the curriculum's three-way branch.

Not covered: and/or (give each stage its own condition), arithmetic, lists as values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from crucible.improve.gates import NUMBER, OP, OPS
from crucible.io import JsonlError, parse_line

VALUE_FILES = {"curriculum": "decision.json", "compare": "compare.json", "eval": "summary.json",
               "mine": "mine.json", "vote": "vote.json", "probes": "probes.json"}
DECISION_KEYS = ("stage", "results", "level", "samples", "pass_rate", "action", "next_level",
                 "tasks.all", "tasks.some", "tasks.none")  # what a curriculum stage writes (improve.run)
KNOWN_KEYS = {"curriculum": DECISION_KEYS}
CONDITION = re.compile(rf"\s*([A-Za-z_][\w-]*)\.([\w@-]+(?:\.[\w@-]+)*)\s*{OP}\s*"
                       rf"(?:'([^']*)'|\"([^\"]*)\"|{NUMBER})\s*")


class StageValueError(ValueError):
    """A value or condition that cannot be read; callers add the recipe file and line."""


@dataclass(frozen=True)
class Condition:
    stage: str
    key: str
    op: str
    literal: str | float
    text: str

    def holds(self, value) -> bool:
        if isinstance(self.literal, str):
            return OPS[self.op](str(value), self.literal)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise StageValueError(f"condition {self.text!r}: {self.stage}.{self.key} is {value!r}, not a number")
        return OPS[self.op](float(value), self.literal)


def parse_condition(text) -> Condition:
    m = CONDITION.fullmatch(text) if isinstance(text, str) else None
    if not m:
        raise StageValueError(f"when {text!r}: expected STAGE.KEY OP VALUE, VALUE a number or a quoted string "
                              "(e.g. \"cur1.action == 'mine'\")")
    stage, key, op, single, double, number = m.groups()
    literal = float(number) if number is not None else single if single is not None else double
    if isinstance(literal, str) and op not in ("==", "!="):
        raise StageValueError(f"when {text!r}: a string compares only with == or !=")
    return Condition(stage, key, op, literal, " ".join(text.split()))


def check_key(stage: str, kind: str, key: str) -> None:
    """Whether {stage.key} can be read from a stage of this kind (raises StageValueError)."""
    if kind not in VALUE_FILES:
        raise StageValueError(f"{{{stage}.{key}}}: stage {stage!r} is a {kind} stage, which has no values "
                              f"(values come from {', '.join(f'{k}: {f}' for k, f in VALUE_FILES.items())})")
    if kind in KNOWN_KEYS and key not in KNOWN_KEYS[kind]:
        raise StageValueError(f"{{{stage}.{key}}}: a {kind} stage's {VALUE_FILES[kind]} has no {key!r} "
                              f"(keys: {', '.join(KNOWN_KEYS[kind])})")


def scalar_keys(obj: dict, prefix: str = "") -> list[str]:
    """The dotted paths of an object that end at a string, number or boolean."""
    keys = []
    for k, v in obj.items():
        if isinstance(v, dict):
            keys += scalar_keys(v, f"{prefix}{k}.")
        elif isinstance(v, (str, int, float, bool)):
            keys.append(f"{prefix}{k}")
    return keys


def read_value(stage_dir: Path, kind: str, key: str):
    """The value at `key` in the stage's value file (raises StageValueError naming the file)."""
    path = Path(stage_dir) / VALUE_FILES[kind]
    if not path.is_file():
        raise StageValueError(f"{path}: no such file (the stage wrote no {VALUE_FILES[kind]})")
    try:
        value = parse_line(path, 1, path.read_bytes())
    except JsonlError as e:
        raise StageValueError(str(e)) from None
    whole = value
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise StageValueError(f"{path} has no {key!r} (keys: {', '.join(scalar_keys(whole)) or 'none'})")
        value = value[part]
    if not isinstance(value, (str, int, float, bool)):
        raise StageValueError(f"{path}: {key!r} is not a string, number or boolean")
    return value


def as_text(value) -> str:
    """A value as it goes into a flag: booleans as true/false, like the TOML they came from."""
    return str(value).lower() if isinstance(value, bool) else str(value)
