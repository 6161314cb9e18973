"""pass@k and its confidence interval."""

from crucible.metrics.passk import bootstrap_ci, pass_at_k, pass_at_k_table, task_counts

__all__ = ["pass_at_k", "bootstrap_ci", "pass_at_k_table", "task_counts"]
