"""Write tasks (or a pretraining corpus) of the built-in "transform a string" task world.

examples:
  crucible world --levels 3 --split heldout --count 100 --out heldout3.jsonl
  crucible eval world --tasks heldout3.jsonl --model native:ckpt/ --out runs/w3
  crucible world --levels 1,2 --corpus --out easy.jsonl     # {"text": prompt + reference} per task

A level is the number of composed steps. Train and held-out tasks never overlap (a hash of the steps
decides); --seed draws the tasks and their test inputs. See crucible.tasks.world.
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--levels", default="1,2,3", help="comma-separated levels (steps per task), 1..5")
    p.add_argument("--split", default="all", choices=("train", "heldout", "all"))
    p.add_argument("--count", type=int, help="at most this many tasks per level (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--corpus", action="store_true", help='write {"text": prompt + reference program} lines')
    p.add_argument("--out", required=True, metavar="FILE.jsonl")


def main(args) -> int:
    import json
    from pathlib import Path

    from crucible.cli import UsageError
    from crucible.commands import usage_errors
    from crucible.io import replacing
    from crucible.tasks.world import WorldError, corpus_text, generate

    try:
        levels = [int(x) for x in args.levels.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--levels must be comma-separated integers, got {args.levels!r}") from None
    if args.count is not None and args.count < 1:
        raise UsageError(f"--count must be >= 1, got {args.count}")
    with usage_errors(WorldError, prefix="--levels/--split: "):
        tasks = generate(levels, split=args.split, count=args.count, seed=args.seed)
    out = Path(args.out)
    with replacing(out) as tmp, tmp.open("w", encoding="utf-8") as f:
        for t in tasks:
            f.write(json.dumps({"text": corpus_text(t)} if args.corpus else t.to_json()) + "\n")
    print(f"wrote {len(tasks)} {'documents' if args.corpus else 'tasks'} to {out}")
    return 0
