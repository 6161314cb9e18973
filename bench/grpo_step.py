"""Where a GRPO step's time goes on CPU: sampling, grading in the sandbox, training; G = 8 x 8 tasks.

A small native GPT (made here: depth 2, width 128, random weights) samples 8 completions for each
of 8 bundled puzzles (Python) through the engine; every completion is graded in bubblewrap by the
puzzle suite; the update runs on every group. A random model fails every puzzle, so a small
length reward (-len/1000, through the --reward mechanism) keeps the groups from being all equal
and the training phase from being skipped. Reports seconds per phase, mean ± std over steps, and
their shares.

  .venv/bin/python bench/grpo_step.py
  .venv/bin/python bench/grpo_step.py --steps 5 --max-new-tokens 128 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path


def length_penalty(task, completion):
    return -len(completion) / 1000


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--tasks", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    import torch

    from crucible.testing import random_gpt, tokenizer
    from crucible.posttrain import grpo
    from crucible.posttrain.config import GRPOConfig
    from crucible.posttrain.policy import load_policy
    from crucible.posttrain.rewards import RewardFn
    from crucible.sandbox import require_sandbox
    from crucible.eval.suites import load_suite

    require_sandbox(False)
    torch.set_num_threads(1)
    suite, _ = load_suite("puzzles", language="python", limit=args.tasks)
    tok = tokenizer(1024)
    with tempfile.TemporaryDirectory() as tmp:
        random_gpt(tok, n_embd=128, n_head=2, n_kv_head=1).save_pretrained(Path(tmp) / "base", tok)
        policy = load_policy(f"native:{Path(tmp) / 'base'}", device="cpu")
        cfg = GRPOConfig(model="x", out=str(Path(tmp) / "rl"), suite="puzzles", lr=1e-4,
                              batch_size=args.group_size * args.tasks, micro_batch=16, max_steps=args.steps,
                              group_size=args.group_size, tasks_per_step=args.tasks,
                              max_new_tokens=args.max_new_tokens, log_every=1)
        grpo.train(cfg, policy, suite, [RewardFn("length", length_penalty, 1.0)], progress=False, workers=4)
        steps = [json.loads(line) for line in (Path(tmp) / "rl" / "log.jsonl").read_text().splitlines()]
    steps = [s for s in steps if s.get("event") == "train"]
    phases = {k: [s[k] for s in steps] for k in ("sample_s", "grade_s", "train_s")}
    total = sum(sum(v) for v in phases.values())
    print(f"\nGRPO step on CPU, {args.tasks} tasks x G={args.group_size}, up to {args.max_new_tokens} new tokens, "
          f"{len(steps)} steps:")
    for k, v in phases.items():
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        print(f"  {k[:-2]:<7} {statistics.fmean(v):6.2f} s ± {sd:.2f}  ({100 * sum(v) / total:4.1f}% of the step)")
    tokens = [s["generated_tokens"] for s in steps]
    print(f"  generated {statistics.fmean(tokens):,.0f} tokens/step; "
          f"{statistics.fmean(s['tokens_per_s'] for s in steps):,.0f} tokens/s over the whole step")
    if args.json:
        Path(args.json).write_text(json.dumps({"steps": steps}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
