"""pass@k and its confidence interval; Wilson intervals for plain shares."""

from crucible.metrics.passk import bootstrap_ci, pass_at_k, pass_at_k_table, task_counts
from crucible.metrics.proportion import wilson_interval

__all__ = ["pass_at_k", "bootstrap_ci", "pass_at_k_table", "task_counts", "wilson_interval"]
