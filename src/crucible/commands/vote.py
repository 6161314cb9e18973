"""vote@N beside pass@1 and pass@N: submit each task's largest cluster of same-behaving samples.

examples:
  crucible eval world --tasks h3.jsonl --model native:ckpt/ --n 8 --temperature 1 --out runs/w3
  crucible vote world runs/w3 --tasks h3.jsonl          # reads runs/w3/samples.jsonl + results.jsonl
  crucible vote puzzles runs/pz --samples mixed.jsonl --language python,rust
  crucible vote answers runs/a --tasks arith.jsonl --answer-mode final

Every distinct program runs on the task's vote inputs inside the sandbox (world: inputs apart from
the hidden tests; puzzles and answer programs: empty stdin, so the vote is over printed answers;
answers in words are never run: the vote is over their normalised final answers); the submitted sample's
graded verdict counts. Writes vote.json and caches the program runs in vote_behaviours.jsonl, in
--out (default: DIR).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("suite", choices=("world", "puzzles", "answers"), help="suite the samples were graded on")
    p.add_argument("dir", metavar="DIR", help="results directory of `crucible eval` (has results.jsonl)")
    p.add_argument("--samples", metavar="FILE.jsonl", help="the graded samples (default: DIR/samples.jsonl)")
    p.add_argument("--tasks", metavar="FILE.jsonl", help="the tasks file the run was evaluated on")
    p.add_argument("--language", default="all", help="puzzles: languages of the run (default: all ready)")
    p.add_argument("--answer-mode", choices=("final", "program"), help="answers: the mode the run was evaluated in")
    p.add_argument("--workers", type=int, default=None, help="programs run in parallel (default: CPU count)")
    p.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="run untrusted code without bubblewrap (prints a warning on every run)")
    p.add_argument("--out", metavar="OUT", help="where vote.json and the behaviour cache go (default: DIR)")
    p.add_argument("--no-progress", action="store_true")


def main(args) -> int:
    import json
    import os
    from pathlib import Path

    from crucible.commands import usage_errors
    from crucible.eval.suites import load_suite
    from crucible.grade import SampleError
    from crucible.grade.runner import read_samples
    from crucible.improve.vote import VoteError, render, vote, vote_summary
    from crucible.io import JsonlError, atomic_write
    from crucible.report.build import ReportError, load_rows
    from crucible.sandbox import require_sandbox
    from crucible.tasks.common import TaskError

    require_sandbox(args.unsafe_no_sandbox)
    graded, out = Path(args.dir), Path(args.out or args.dir)
    out.mkdir(parents=True, exist_ok=True)
    with usage_errors(TaskError, SampleError, JsonlError, ReportError, VoteError):
        suite, _ = load_suite(args.suite, language=args.language, tasks_file=args.tasks, unsafe=args.unsafe_no_sandbox,
                              answer_mode=args.answer_mode)
        rows = load_rows(graded)
        samples = read_samples(args.samples or graded / "samples.jsonl", suite)
        inputs_of = getattr(suite, "vote_inputs", lambda task_id: [""])  # puzzles read no input
        votes = vote(samples, rows, inputs_of, out, workers=args.workers or os.cpu_count() or 1,
                     unsafe=args.unsafe_no_sandbox, progress=not args.no_progress,
                     answer_of=getattr(suite, "vote_answer", None), canonical=getattr(suite, "vote_canonical", None))
    summary = vote_summary(votes, rows)
    atomic_write(out / "vote.json", json.dumps({**summary, "tasks": votes}, indent=2) + "\n")
    print(render(summary), end="")
    return 0
