"""Grading on a Ray cluster: a suite whose programs are graded in batches by Ray tasks.

`RayGrading(suite)` is a `crucible.grade.Suite` like the one it wraps, except that `grade` sends
batches of distinct programs to the cluster (`fan_out`) and yields their verdicts as batches come
back. Everything that decides *what* is graded and how rows are written stays the caller's, so a
caller plugs it in where a suite goes: `grade_samples(RayGrading(suite), samples, out)` keeps the
results file exactly-once and resumable, and `verdicts(RayGrading(suite), samples)` is the
in-memory form (GRPO rewards, mining).

Each batch runs `grade_batch` on some node: the wrapped suite (sent to the object store once per
call) grades it with that node's own sandbox, one CPU per task. A node whose bubblewrap cannot
start a sandbox answers `sandbox_error` for every program of the batch, naming the node: an
infrastructure error, which reports keep apart from the model's failures, never a verdict.
Not covered: warm graders across batches (each task starts its suite's graders, e.g. HumanEval's
judges, about 0.3 s; batches of BATCH programs amortise it).
"""

from __future__ import annotations

import socket
from contextlib import nullcontext
from dataclasses import dataclass

from crucible.grade import Verdict
from crucible.sandbox import sandbox_problem
from crucible.scale.fanout import fan_out

BATCH = 16  # programs per Ray task


@dataclass
class RayGrading:
    suite: object
    batch: int = BATCH
    max_retries: int = 3

    @property
    def name(self) -> str:
        return self.suite.name

    @property
    def tasks(self) -> list:
        return self.suite.tasks

    def check_sample(self, sample: dict) -> str | None:
        return self.suite.check_sample(sample)

    def group(self, sample: dict) -> str:
        return self.suite.group(sample)

    def program_key(self, sample: dict) -> str:
        return self.suite.program_key(sample)

    def pool(self, workers: int):
        return nullcontext()  # graders live on the nodes, one set per Ray task

    def grade(self, samples, workers: int, pool=None):
        """(key, verdict) for each (key, sample) pair, as batches finish anywhere in the cluster."""
        pairs = list(samples)
        batches = [pairs[i:i + self.batch] for i in range(0, len(pairs), self.batch)]
        for _, graded in fan_out(grade_batch, batches, shared=(self.suite,), max_retries=self.max_retries):
            yield from graded

    def __getattr__(self, name):  # anything else a caller reads (python_env, unsafe, limits)
        if name == "suite":
            raise AttributeError(name)
        return getattr(self.suite, name)


def grade_batch(suite, batch: list[tuple[str, dict]]) -> list[tuple[str, Verdict]]:
    """Runs on a node: this node's verdicts for `batch`, or sandbox_error for all of it."""
    why = sandbox_problem(bool(getattr(suite, "unsafe", False)))
    if why is not None:
        return [(key, Verdict("sandbox_error", f"node {socket.gethostname()}: {why}")) for key, _ in batch]
    return list(suite.grade(batch, 1))
