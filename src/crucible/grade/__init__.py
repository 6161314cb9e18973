"""Grading: suites turn samples into verdicts, in memory; `runner` adds resume and files.

A suite (HumanEval, puzzles, HumanEval in another language) implements the `Suite` protocol below
over the tasks it was given (`crucible.tasks`). `verdicts.verdicts(suite, samples)` grades each
distinct program once and writes nothing: records in, verdicts out (what RL rewards call, holding
`suite.pool(workers)` warm across calls). `runner.grade_samples` adds the results file and resume.
Summaries (pass@k with intervals) are `crucible.eval`'s.

Verdict statuses: pass, wrong_answer, runtime_error, compile_error, timeout, memory, output_limit
(model failures) and sandbox_error (infrastructure: never counted as the model's fault in reports,
but a sample with it does not pass either).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

VERDICTS = ("pass", "wrong_answer", "runtime_error", "compile_error", "timeout", "memory",
            "output_limit", "sandbox_error")
INFRA = ("sandbox_error",)


@dataclass(frozen=True)
class Verdict:
    status: str          # one of VERDICTS
    detail: str = ""     # short, human-readable (first line of the error, the failing assert, ...)
    wall_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "pass"


class SampleError(ValueError):
    """A samples file cannot be graded; the message names the file and line."""


class Suite(Protocol):
    name: str
    tasks: list  # the crucible.tasks.common.Task records in scope, in order


    def check_sample(self, sample: dict) -> str | None:
        """Why this sample cannot be graded (unknown task_id, missing field), or None."""

    def group(self, sample: dict) -> str:
        """The breakdown a sample reports under: its language ("python" for HumanEval)."""

    def program_key(self, sample: dict) -> str:
        """Identical keys are executed once: e.g. hash of (task_id, language, program)."""

    def grade(self, samples: Iterable[tuple[str, dict]], workers: int, pool=None) -> Iterator[tuple[str, Verdict]]:
        """Grade (key, sample) pairs, yielding (key, verdict) as each finishes, in any order; `pool`
        is what `pool()` returned, or None to start graders for this call only."""

    def pool(self, workers: int) -> AbstractContextManager:
        """Graders kept warm across `grade` calls (HumanEval's judge processes); a context manager
        whose value is passed to `grade` as `pool` (None where there is nothing to keep warm)."""


def program_hash(*parts: str) -> str:
    """A program key from the parts that decide its verdict."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:32]


def failure_verdict(out) -> Verdict:
    """The verdict of a sandbox Outcome that is not a clean, checked run: its status passes through
    (anything unexpected is a runtime_error), with the last stderr line as detail for crashes."""
    status = out.status if out.status in VERDICTS else "runtime_error"
    detail = out.detail or out.stderr.strip()[-200:]
    if status == "runtime_error" and out.stderr.strip():
        detail = f"{detail}: {out.stderr.strip().splitlines()[-1][:200]}"
    return Verdict(status, detail, out.wall_s)


def grade_in_threads(grade_one: Callable[[dict], Verdict], samples: Iterable[tuple[str, dict]],
                     workers: int) -> Iterator[tuple[str, Verdict]]:
    """Suite.grade for suites whose samples are one-shot sandbox runs: a thread each (the work is
    in the sandboxed processes), build-cache statistics printed at the end."""
    from crucible.languages.build import report_stats

    with report_stats(), ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(grade_one, s): key for key, s in samples}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
