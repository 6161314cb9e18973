"""Render per-language pass@k tables, curves and failure modes from a results directory.

examples:
  crucible report runs/pz               # writes runs/pz/report.md, report.json, passk.png, failures.png
  crucible report runs/he-rs --quiet    # files only

Works on any directory written by `crucible eval` (HumanEval, puzzles, translated HumanEval), also
while a run is still in progress (it reads the complete rows so far).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", help="results directory (has results.jsonl)")
    p.add_argument("--title", help="heading of the report (default: the suite's name)")
    p.add_argument("--quiet", action="store_true", help="do not print the report")


def main(args) -> int:
    from crucible.commands import usage_errors
    from crucible.io import JsonlError
    from crucible.report.build import ReportError
    from crucible.report.render import write_report

    with usage_errors(ReportError, JsonlError):
        write_report(args.dir, args.title)
    if not args.quiet:
        from pathlib import Path

        print((Path(args.dir) / "report.md").read_text(), end="")
        print(f"\nwrote {args.dir}/report.md, report.json, passk.png, failures.png")
    return 0
