"""Check gates (`pass@1 >= 0.30`, `probes.total >= 0.95`, `compare.p < 0.05`) on result files; exit 3 if one fails.

examples:
  crucible gate "pass@1 >= 0.30" --metrics runs/sft                  # runs/sft/summary.json
  crucible compare runs/base runs/sft --json > cmp.json
  crucible gate "compare.p < 0.05" "compare.lo > 0" --metrics cmp.json
  crucible gate "probes.total >= 0.95" --metrics runs/probes/probes.json

--metrics takes result JSON files, or directories (their summary.json, probes.json, vote.json and
compare.json).
Exit codes: 0 every gate holds; 3 a gate failed (each failure says by how much); 2 bad usage (an
unreadable gate, a metric the results do not have).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("gates", nargs="+", metavar="GATE", help="METRIC OP NUMBER, e.g. 'pass@1 >= 0.30'")
    p.add_argument("--metrics", action="append", required=True, metavar="FILE|DIR",
                   help="result JSON file or results directory (repeatable)")


def main(args) -> int:
    import sys

    from crucible.commands import usage_errors
    from crucible.improve.gates import GateError, GateFailed, describe, enforce, metrics_from_paths, parse_gate

    try:
        with usage_errors(GateError):
            checks = enforce([parse_gate(g) for g in args.gates], metrics_from_paths(args.metrics))
    except GateFailed as e:
        for c in e.checks:
            print(describe(c), file=sys.stderr if not c["passed"] else sys.stdout)
        return 3
    for c in checks:
        print(describe(c))
    return 0
