"""Grading in memory: samples in, verdicts out, nothing written.

`verdicts(suite, samples)` runs each distinct program (the suite's `program_key`) once and yields
(program key, verdict) as each finishes; `grade_all` gives one verdict per sample, in order. A
caller grading again and again (RL rewards every step) holds `suite.pool(workers)` open and passes
it as `pool`, so HumanEval's judge processes are started once, not on every call.
Not covered: caching verdicts across calls (the results runner does that through its file).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from crucible.grade import Suite, Verdict


def verdicts(suite: Suite, samples: Iterable[dict], *, workers: int | None = None,
             pool=None) -> Iterator[tuple[str, Verdict]]:
    """(program key, verdict) for each distinct program among `samples`, in the order they finish."""
    first: dict[str, dict] = {}
    for s in samples:
        first.setdefault(suite.program_key(s), s)
    if first:
        yield from suite.grade(first.items(), workers or os.cpu_count() or 1, pool)


def grade_all(suite: Suite, samples: list[dict], *, workers: int | None = None, pool=None) -> list[Verdict]:
    """One verdict per sample, in the samples' order."""
    got = dict(verdicts(suite, samples, workers=workers, pool=pool))
    return [got[suite.program_key(s)] for s in samples]
