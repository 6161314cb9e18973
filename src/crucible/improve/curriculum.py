"""Curriculum: a round's pass rate at a level decides where the next round samples.

Per task: "all" (every sample passed: nothing left to learn there), "some" (the informative tasks:
mine them, and pair their passing and failing samples), "none" (too hard for now). Per level, from
every sample at that level: all passed -> "harder" (level + 1), none passed -> "easier" (level - 1),
else "mine" (stay). The decision, with the pass rate and its 95% Wilson interval and the task
counts, is what a round records (`record`: one appended, flushed line per round).

Levels are read from the rows' "difficulty" ("level 3", as the task world writes it).

Not covered: mixing levels within a round (choose the share per level yourself), and suites without
levels (HumanEval, puzzles' easy/medium/hard are not an ordered ladder of steps).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

from crucible.metrics import wilson_interval


class CurriculumError(ValueError):
    """The rows cannot drive a curriculum (no level on them, none at the level asked)."""


def level_of(row: dict) -> int:
    text = str(row.get("difficulty", ""))
    if not text.startswith("level "):
        raise CurriculumError(f"row for {row.get('task_id')!r} has no level (difficulty {text!r}, expected 'level N')")
    return int(text.split()[1])


def task_outcomes(rows: list[dict]) -> dict[str, str]:
    """{task_id: "all" | "some" | "none"} by how many of its samples passed."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        counts[r["task_id"]][0] += 1
        counts[r["task_id"]][1] += bool(r["passed"])
    return {t: "all" if c == n else "none" if c == 0 else "some" for t, (n, c) in sorted(counts.items())}


def decide(rows: list[dict], level: int, *, lowest: int = 1, highest: int = 5) -> dict:
    """The decision for `level` from the rows of that level."""
    at_level = [r for r in rows if level_of(r) == level]
    if not at_level:
        raise CurriculumError(f"no rows at level {level}")
    passed = sum(bool(r["passed"]) for r in at_level)
    action = "harder" if passed == len(at_level) else "easier" if passed == 0 else "mine"
    step = {"harder": 1, "easier": -1, "mine": 0}[action]
    outcomes = task_outcomes(at_level)
    return {"level": level, "samples": len(at_level), "pass_rate": passed / len(at_level),
            "ci": list(wilson_interval(passed, len(at_level))), "action": action,
            "next_level": min(highest, max(lowest, level + step)),
            "tasks": {k: sum(1 for v in outcomes.values() if v == k) for k in ("all", "some", "none")},
            "mine_tasks": [t for t, v in outcomes.items() if v == "some"]}


def describe(decision: dict) -> str:
    """One line: the level, its pass rate with the interval, the task counts and the choice."""
    lo, hi = decision["ci"]
    tasks = "/".join(str(decision["tasks"][k]) for k in ("all", "some", "none"))
    return (f"level {decision['level']}: pass rate {100 * decision['pass_rate']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] "
            f"over {decision['samples']} samples; tasks all/some/none passing: {tasks} -> {decision['action']} "
            f"(next level {decision['next_level']})")


def record(path: str | Path, decision: dict) -> None:
    """Append one round's decision to a JSONL file, flushed and synced."""
    with Path(path).open("a", encoding="utf-8") as f:
        f.write(json.dumps(decision) + "\n")
        f.flush()
        os.fsync(f.fileno())
