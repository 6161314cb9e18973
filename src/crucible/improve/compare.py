"""Paired comparison of two evaluations of the same tasks: how much better is B than A, and is it real?

Why paired: both runs answer the same tasks, so the spread of task difficulty, which dominates each
run's own interval, cancels in the per-task differences. Two runs whose pass@1 intervals overlap can
still differ clearly when B wins on many tasks and loses on none.

Per task the statistic is its pass rate c / n (the unbiased pass@1); Δ = mean over tasks of
(rate_B − rate_A). The interval is a paired bootstrap: tasks are resampled with replacement and the
same draw is used for A and B (the bootstrap of the per-task differences, via
`crucible.metrics.bootstrap_ci`, seeded, over tasks in sorted order so row order does not matter).

The p-value (two-sided, H0: neither run is better):
- one sample per task in both runs: McNemar's exact test. Only discordant tasks (passed by one run,
  failed by the other) carry information; under H0 each is B's win with probability 1/2, so
  p = min(1, 2 · P[Binomial(b + c, 1/2) <= min(b, c)]), computed with integers.
- otherwise: a paired sign-flip permutation test on the per-task differences d_i (H0: each d_i is
  symmetric about 0), statistic |Σ d_i|. With at most EXACT_FLIPS nonzero differences all 2^m sign
  patterns are enumerated; beyond that, `resamples` seeded random patterns, with the (1 + hits) /
  (1 + resamples) correction so that p is never 0. With one sample per task this test is McNemar's.

Not covered: runs over different task sets (refused: `TaskSetMismatch` names the difference),
pass@k for k > 1, per-language breakdowns (compare per-language result directories instead).
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from math import comb

import numpy as np

from crucible.metrics import bootstrap_ci, task_counts

EXACT_FLIPS = 16  # 2^16 sign patterns are enumerated exactly; more nonzero differences are sampled


class TaskSetMismatch(ValueError):
    """The two runs did not evaluate the same tasks; the message names what differs."""


def task_key(row: dict) -> str:
    """A task is (task_id, language), as in the grader's summary: puzzles run in several languages."""
    return f"{row['task_id']}\x1f{row['language']}"


def show_task(key: str) -> str:
    task_id, _, language = key.partition("\x1f")
    return f"{task_id} ({language})"


def paired_counts(rows_a: list[dict], rows_b: list[dict]) -> tuple[dict, dict]:
    """{task: (n, c)} for each run, after checking that both cover the same tasks."""
    a, b = task_counts(rows_a, key=task_key), task_counts(rows_b, key=task_key)
    only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
    if only_a or only_b:
        parts = []
        for name, keys in (("A", only_a), ("B", only_b)):
            if keys:
                shown = ", ".join(show_task(k) for k in keys[:5]) + (", ..." if len(keys) > 5 else "")
                parts.append(f"{len(keys)} task(s) only in {name}: {shown}")
        raise TaskSetMismatch(f"the runs evaluated different tasks ({len(a)} vs {len(b)}); " + "; ".join(parts))
    return a, b


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (tasks passed only by A, only by B)."""
    m = a_only + b_only
    if m == 0:
        return 1.0
    tail = Fraction(sum(comb(m, i) for i in range(min(a_only, b_only) + 1)), 2 ** m)
    return float(min(Fraction(1), 2 * tail))


def sign_flip_p(diffs, *, resamples: int = 20000, seed: int = 0) -> tuple[float, str]:
    """Two-sided p of |Σ d| under random sign flips of the per-task differences, and which method."""
    d = np.asarray([x for x in diffs if x != 0], dtype=np.float64)
    if d.size == 0:
        return 1.0, "sign_flip_exact"
    observed = abs(d.sum()) - 1e-9 * max(1.0, abs(d.sum()))  # ties count as extreme despite rounding
    if d.size <= EXACT_FLIPS:
        patterns = (np.arange(2 ** d.size)[:, None] >> np.arange(d.size)) & 1
        sums = np.abs(((2 * patterns - 1) * d).sum(axis=1))
        return float((sums >= observed).mean()), "sign_flip_exact"
    rng = np.random.default_rng(seed)
    hits, chunk = 0, 2000
    for start in range(0, resamples, chunk):
        signs = rng.choice((-1.0, 1.0), size=(min(chunk, resamples - start), d.size))
        hits += int((np.abs(signs @ d) >= observed).sum())
    return (1 + hits) / (1 + resamples), "sign_flip_monte_carlo"


def compare_counts(a: Mapping[str, tuple[int, int]], b: Mapping[str, tuple[int, int]], *, seed: int = 0,
                   resamples: int = 2000, flips: int = 20000) -> dict:
    """Δ pass@1 (B − A) with a paired-bootstrap interval and a p-value, given {task: (n, c)} for each."""
    keys = sorted(a)
    rate_a = [a[k][1] / a[k][0] for k in keys]
    rate_b = [b[k][1] / b[k][0] for k in keys]
    diffs = [rb - ra for ra, rb in zip(rate_a, rate_b)]
    one_sample = all(a[k][0] == 1 and b[k][0] == 1 for k in keys)
    result = {
        "n_tasks": len(keys),
        "samples_per_task": {"a": sorted({a[k][0] for k in keys}), "b": sorted({b[k][0] for k in keys})},
        "a": {"pass@1": float(np.mean(rate_a)), "ci": list(bootstrap_ci(rate_a, resamples=resamples, seed=seed))},
        "b": {"pass@1": float(np.mean(rate_b)), "ci": list(bootstrap_ci(rate_b, resamples=resamples, seed=seed))},
        "delta": float(np.mean(diffs)),
        "ci": list(bootstrap_ci(diffs, resamples=resamples, seed=seed)),
    }
    if one_sample:
        a_only = sum(1 for d in diffs if d < 0)
        b_only = sum(1 for d in diffs if d > 0)
        result.update(p_value=mcnemar_exact(a_only, b_only), test="mcnemar_exact",
                      discordant={"a_only": a_only, "b_only": b_only})
    else:
        p, method = sign_flip_p(diffs, resamples=flips, seed=seed)
        result.update(p_value=p, test=method)
    return result


def compare_rows(rows_a: list[dict], rows_b: list[dict], **options) -> dict:
    """`compare_counts` on two runs' result rows (see `paired_counts`); infrastructure failures are
    counted beside the result, as the grader's summary counts them: not passed."""
    a, b = paired_counts(rows_a, rows_b)
    result = compare_counts(a, b, **options)
    result["infra"] = {"a": sum(r["status"] == "sandbox_error" for r in rows_a),
                       "b": sum(r["status"] == "sandbox_error" for r in rows_b)}
    return result


def render(result: dict, name_a: str, name_b: str) -> str:
    """A few lines of text: both runs with intervals, Δ with its interval, the p-value and its test."""
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    signed = lambda x: f"{100 * x:+.1f}"  # noqa: E731
    n = result["samples_per_task"]
    lines = [f"{result['n_tasks']} tasks in both runs; samples per task: A {n['a']}, B {n['b']}"]
    for side, name in (("a", name_a), ("b", name_b)):
        r = result[side]
        lines.append(f"{side.upper()} {name}: pass@1 {pct(r['pass@1'])}% [{pct(r['ci'][0])}, {pct(r['ci'][1])}]")
    lo, hi = result["ci"]
    lines.append(f"Δ pass@1 (B − A): {signed(result['delta'])} points, 95% CI [{signed(lo)}, {signed(hi)}] "
                 "(paired bootstrap over tasks)")
    if result["test"] == "mcnemar_exact":
        d = result["discordant"]
        how = f"McNemar exact: {d['b_only']} tasks pass only in B, {d['a_only']} only in A"
    else:
        how = result["test"].replace("_", " ") + " test on per-task pass-rate differences"
    lines.append(f"p = {result['p_value']:.4g} ({how})")
    infra = result.get("infra", {})
    if any(infra.values()):
        lines.append(f"infrastructure failures (counted as not passed): A {infra['a']}, B {infra['b']}")
    return "\n".join(lines) + "\n"
