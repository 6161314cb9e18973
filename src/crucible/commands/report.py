"""Render reports: pass@k tables, curves and failure modes of an eval directory, or one HTML page for a run.

examples:
  crucible report runs/pz               # writes runs/pz/report.md, report.json, passk.png, failures.png
  crucible report runs/he-rs --quiet    # files only
  crucible report runs/loop             # a `crucible run` directory: writes runs/loop/report.html and
                                        # runs/loop/report/*.png, prints the page's path

Works on any directory written by `crucible eval` (HumanEval, puzzles, translated HumanEval), also
while a run is still in progress (it reads the complete rows so far). A directory with run.json is a
`crucible run` directory: the page covers its stages, gates, pass@k and pass@1 by stage, mining,
comparisons, vote@N and training curves, whatever the run has so far (it opens offline).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", help="results directory (has results.jsonl) or run directory (has run.json)")
    p.add_argument("--title", help="heading of the report (default: the suite's name, or the run's)")
    p.add_argument("--quiet", action="store_true", help="do not print the report (a run page's path is printed)")


def main(args) -> int:
    from crucible.commands import usage_errors
    from crucible.io import JsonlError
    from crucible.report.build import ReportError
    from crucible.report.render import write_report
    from crucible.report.run_files import is_run_dir, write_run_report

    if is_run_dir(args.dir):
        with usage_errors(ReportError, JsonlError):
            print(write_run_report(args.dir, args.title))
        return 0
    with usage_errors(ReportError, JsonlError):
        write_report(args.dir, args.title)
    if not args.quiet:
        from pathlib import Path

        print((Path(args.dir) / "report.md").read_text(), end="")
        print(f"\nwrote {args.dir}/report.md, report.json, passk.png, failures.png")
    return 0
