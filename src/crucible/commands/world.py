"""Write tasks (or a pretraining corpus) of a built-in task family: string transforms or arithmetic.

examples:
  crucible world --levels 3 --split heldout --count 100 --out heldout3.jsonl
  crucible eval world --tasks heldout3.jsonl --model native:ckpt/ --out runs/w3
  crucible world --levels 1,2 --corpus --out easy.jsonl     # {"text": prompt + reference} per task
  crucible world --family arithmetic --levels 1,2,3 --split train --count 200 --out arith.jsonl
  crucible eval answers --tasks arith.jsonl --model native:ckpt/ --out runs/a   # answer-checked
  crucible world --family arithmetic --levels 1,2 --answer-mode program --corpus --out arith_code.jsonl

A level is the number of composed steps (string operations, or arithmetic operations in a word
problem). Train and held-out tasks never overlap (a hash of the steps, or of the question, decides);
--seed draws the tasks and their test inputs. See crucible.tasks.world and crucible.tasks.answers.
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", default="strings", choices=("strings", "arithmetic"),
                   help="strings: transform-a-string programs (crucible eval world); arithmetic: word problems "
                        "checked by their answer (crucible eval answers)")
    p.add_argument("--levels", default="1,2,3", help="comma-separated levels (steps per task): strings 1..5, "
                                                     "arithmetic 1..6")
    p.add_argument("--split", default="all", choices=("train", "heldout", "all"))
    p.add_argument("--count", type=int, help="at most this many tasks per level (default: all; arithmetic: 50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--answer-mode", choices=("final", "program"),
                   help="arithmetic: the mode written on each task (default final: answered in words)")
    p.add_argument("--corpus", action="store_true", help='write {"text": prompt + reference} lines')
    p.add_argument("--out", required=True, metavar="FILE.jsonl")


def main(args) -> int:
    import json
    from pathlib import Path

    from crucible.cli import UsageError
    from crucible.commands import usage_errors
    from crucible.io import replacing
    from crucible.tasks import answers, world
    from crucible.tasks.common import TaskError

    try:
        levels = [int(x) for x in args.levels.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--levels must be comma-separated integers, got {args.levels!r}") from None
    if args.count is not None and args.count < 1:
        raise UsageError(f"--count must be >= 1, got {args.count}")
    if args.answer_mode and args.family != "arithmetic":
        raise UsageError("--answer-mode applies to --family arithmetic")
    with usage_errors(TaskError, prefix="--levels/--split: "):
        if args.family == "strings":
            tasks = world.generate(levels, split=args.split, count=args.count, seed=args.seed)
        else:
            tasks = answers.generate(levels, split=args.split, count=args.count or 50, seed=args.seed,
                                     mode=args.answer_mode or "final")
    corpus_text = world.corpus_text if args.family == "strings" else answers.corpus_text
    out = Path(args.out)
    with replacing(out) as tmp, tmp.open("w", encoding="utf-8") as f:
        for t in tasks:
            f.write(json.dumps({"text": corpus_text(t)} if args.corpus else t.to_json()) + "\n")
    print(f"wrote {len(tasks)} {'documents' if args.corpus else 'tasks'} to {out}")
    return 0
