"""The task world's suite: a whole Python program per task, run on every hidden test input.

The program is grading's rule (`crucible.sanitize.extract_program`). It runs once per test input
in the sandbox — all inputs in one sandbox, a fresh process each (`crucible.languages.inputs`) — and
passes when every stripped stdout equals the expected output; the first failing input is the
verdict's detail. The vote inputs (no answers) are offered to vote@N (`vote_inputs`). Nothing is
kept warm across calls.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

from crucible.grade import Verdict, failure_verdict, grade_in_threads, program_hash
from crucible.languages.inputs import run_on_inputs
from crucible.sandbox import Limits
from crucible.sanitize import extract_program
from crucible.tasks.world import WorldTask, tasks as world_tasks

LIMITS = Limits(timeout_s=2.0, wall_s=20.0)  # CPU seconds per input; the wall deadline covers them all


@dataclass
class WorldSuite:
    world: list[WorldTask]
    unsafe: bool = False
    name: str = "world"

    def __post_init__(self):
        self.by_id = {t.task_id: t for t in self.world}
        self.tasks = world_tasks(self.world)

    def vote_inputs(self, task_id: str) -> list[str]:
        """Stdin texts for vote@N's behaviour clusters (not the hidden tests)."""
        return [x + "\n" for x in self.by_id[task_id].vote_inputs]

    def check_sample(self, sample: dict) -> str | None:
        if sample.get("task_id") not in self.by_id:
            return f"unknown task_id {sample.get('task_id')!r} (not a task of this world suite)"
        if not isinstance(sample.get("completion"), str):
            return "'completion' must be a string"
        if sample.setdefault("language", "python") != "python":
            return f"world tasks are solved in Python, got language {sample['language']!r}"
        sample.setdefault("difficulty", f"level {self.by_id[sample['task_id']].level}")
        return None

    def group(self, sample: dict) -> str:
        return "python"

    def program_key(self, sample: dict) -> str:
        task = self.by_id[sample["task_id"]]
        return program_hash("world", repr(task.tests), extract_program(sample["completion"], "python"))

    def grade_one(self, sample: dict) -> Verdict:
        task = self.by_id[sample["task_id"]]
        program = extract_program(sample["completion"], "python")
        outcomes = run_on_inputs("python", program, [x + "\n" for x, _ in task.tests], limits=LIMITS,
                                 unsafe=self.unsafe)
        wall = sum(o.wall_s for o in outcomes)
        for (given, want), out in zip(task.tests, outcomes):
            if out.status != "ok":
                return failure_verdict(out)
            if out.stdout.strip() != want.strip():
                return Verdict("wrong_answer", f"input {given!r}: expected {want!r}, got {out.stdout.strip()[:60]!r}",
                               wall)
        return Verdict("pass", "", wall)

    def grade(self, samples, workers: int, pool=None):
        return grade_in_threads(self.grade_one, samples, workers)

    def pool(self, workers: int):
        return nullcontext()
