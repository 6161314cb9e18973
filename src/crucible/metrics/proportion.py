"""Wilson score interval for a share of successes (probes passed, gates' yes/no checks).

Why not the bootstrap over tasks used for pass@k: with every item passed (or none), resampling
only ever draws the same share, so the percentile bootstrap collapses to [1, 1] — the wrong answer
exactly where small probe suites live. Wilson's interval stays inside [0, 1] and has a width at
the edges (10/10 gives [0.72, 1.0]).
"""

from __future__ import annotations

from math import sqrt

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% (by default) Wilson score interval of successes / n; (nan, nan) when n is 0."""
    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the edges, not 1 - 1e-16
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)
