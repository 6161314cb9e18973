"""Decide the next round's level from a graded run: all pass -> harder, some -> mine here, none -> easier.

examples:
  crucible curriculum runs/round1 --level 3 --record runs/curriculum.jsonl

Reads DIR/results.jsonl (task-world rows carry "level N"), prints the decision with the pass rate
and its 95% interval, and with --record appends it to a JSONL file (one line per round).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", help="results directory of `crucible eval` or `crucible mine`")
    p.add_argument("--level", type=int, required=True, help="the level this round sampled")
    p.add_argument("--record", metavar="FILE.jsonl", help="append the decision here")


def main(args) -> int:
    import json

    from crucible.commands import usage_errors
    from crucible.improve.curriculum import CurriculumError, decide, describe, record
    from crucible.io import JsonlError
    from crucible.report.build import ReportError, load_rows

    with usage_errors(ReportError, JsonlError, CurriculumError, prefix=f"{args.dir}: "):
        decision = decide(load_rows(args.dir), args.level)
    decision["run"] = str(args.dir)
    print(describe(decision))
    if args.record:
        record(args.record, decision)
    else:
        print(json.dumps({k: v for k, v in decision.items() if k != "mine_tasks"}))
    return 0
