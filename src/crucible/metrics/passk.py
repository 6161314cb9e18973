"""Unbiased pass@k (Chen et al. 2021) and a bootstrap interval over tasks.

pass@k for one task with n samples of which c pass is 1 - C(n-c, k) / C(n, k): the chance that k
samples drawn without replacement include a correct one. The ratio of binomials is computed as the
product  prod_{i=n-c+1..n} (1 - k/i), which never forms a huge binomial and stays accurate for n in
the thousands. The interval resamples tasks (not samples): the question is how the score would move
on another draw of problems like these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one task: n samples, c correct, 1 <= k <= n."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n} c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n} k={k}")
    if n - c < k:
        return 1.0
    prob_all_fail = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_fail *= 1.0 - k / i
    return 1.0 - prob_all_fail


def bootstrap_ci(values: Sequence[float], *, confidence: float = 0.95, resamples: int = 2000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-task values."""
    if not values:
        return (float("nan"), float("nan"))
    v = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(resamples, len(v)))].mean(axis=1)
    lo_q = (1 - confidence) / 2
    lo, hi = np.quantile(means, [lo_q, 1 - lo_q])
    return (float(lo), float(hi))


def task_counts(rows, key=lambda r: r["task_id"]) -> dict[str, tuple[int, int]]:
    """{task: (samples, passed)} from result rows, in sorted task order, so that the bootstrap draws
    (and so the intervals) do not depend on the order the rows were graded in."""
    counts: dict[str, list[int]] = {}
    for r in rows:
        c = counts.setdefault(key(r), [0, 0])
        c[0] += 1
        c[1] += bool(r["passed"])
    return {k: tuple(counts[k]) for k in sorted(counts)}


def pass_at_k_table(counts: Mapping[str, tuple[int, int]], ks: Sequence[int], *,
                    seed: int = 0) -> dict[int, dict]:
    """{k: {"pass": mean, "ci": [lo, hi]}} over tasks given {task: (n, c)}.

    A k is reported only when every task has n >= k (otherwise the mean would mix estimators).
    """
    out: dict[int, dict] = {}
    if not counts:
        return out
    min_n = min(n for n, _ in counts.values())
    for k in sorted(set(ks)):
        if k < 1 or k > min_n:
            continue
        per_task = [pass_at_k(n, c, k) for n, c in counts.values()]
        lo, hi = bootstrap_ci(per_task, seed=seed)
        out[k] = {"pass": sum(per_task) / len(per_task), "ci": [lo, hi]}
    return out
