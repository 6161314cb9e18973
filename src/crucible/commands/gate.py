"""Check gates (`pass@1 >= 0.30`, `probes.total >= 0.95`, `compare.p < 0.05`) on result files; exit 3 if one fails.

examples:
  crucible gate "pass@1 >= 0.30" --metrics runs/sft                  # runs/sft/summary.json
  crucible compare runs/base runs/sft --json > cmp.json
  crucible gate "compare.p < 0.05" "compare.lo > 0" --metrics cmp.json
  crucible gate "probes.total >= 0.95" --metrics runs/probes/probes.json

--metrics takes result JSON files, or directories (their summary.json, probes.json and vote.json).
Exit codes: 0 every gate holds; 3 a gate failed (each failure says by how much); 2 bad usage (an
unreadable gate, a metric the results do not have).
"""

from __future__ import annotations

import argparse

RESULT_FILES = ("summary.json", "probes.json", "vote.json")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("gates", nargs="+", metavar="GATE", help="METRIC OP NUMBER, e.g. 'pass@1 >= 0.30'")
    p.add_argument("--metrics", action="append", required=True, metavar="FILE|DIR",
                   help="result JSON file or results directory (repeatable)")


def load_metrics(paths: list[str]) -> dict[str, float]:
    import json
    from pathlib import Path

    from crucible.cli import UsageError
    from crucible.improve.gates import metrics_from

    metrics: dict[str, float] = {}
    for given in paths:
        path = Path(given)
        files = [path / f for f in RESULT_FILES if (path / f).is_file()] if path.is_dir() else [path]
        if not files or not files[0].is_file():
            raise UsageError(f"{path}: no result file here (looked for {', '.join(RESULT_FILES)})")
        for f in files:
            try:
                obj = json.loads(f.read_text())
            except json.JSONDecodeError as e:
                raise UsageError(f"{f}:{e.lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise UsageError(f"{f}: expected a JSON object")
            metrics.update(metrics_from(obj))
    return metrics


def main(args) -> int:
    import sys

    from crucible.cli import UsageError
    from crucible.improve.gates import GateError, GateFailed, describe, enforce, parse_gate

    metrics = load_metrics(args.metrics)
    try:
        checks = enforce([parse_gate(g) for g in args.gates], metrics)
    except GateError as e:
        raise UsageError(str(e)) from None
    except GateFailed as e:
        for c in e.checks:
            print(describe(c), file=sys.stderr if not c["passed"] else sys.stdout)
        return 3
    for c in checks:
        print(describe(c))
    return 0
