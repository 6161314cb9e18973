"""Paired comparison of two evaluations of the same tasks: Δ pass@1 (B − A), its interval, a p-value.

examples:
  crucible compare runs/base runs/sft            # text: both runs, Δ with a 95% CI, p-value
  crucible compare runs/base runs/sft --json     # {"n_tasks", "delta", "ci": [lo, hi], "p_value", ...}

RUN_A and RUN_B are results directories written by `crucible eval` (each has results.jsonl). The
interval is a paired bootstrap over tasks; the p-value is McNemar's exact test when every task has
one sample in both runs, else a paired sign-flip test on per-task pass rates (see
crucible.improve.compare). Runs over different task sets are refused (exit 2), naming the difference.
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_a", metavar="RUN_A", help="the baseline results directory")
    p.add_argument("run_b", metavar="RUN_B", help="the results directory compared with it")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and of sampled sign flips")


def main(args) -> int:
    import json

    from crucible.commands import usage_errors
    from crucible.improve.compare import TaskSetMismatch, compare_rows, render
    from crucible.io import JsonlError
    from crucible.report.build import ReportError, load_rows

    with usage_errors(ReportError, JsonlError):
        rows_a, rows_b = load_rows(args.run_a), load_rows(args.run_b)
    with usage_errors(TaskSetMismatch, prefix=f"{args.run_a} vs {args.run_b}: "):
        result = compare_rows(rows_a, rows_b, seed=args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render(result, args.run_a, args.run_b), end="")
    return 0
