"""Preference optimisation (DPO sigmoid or IPO) on chosen/rejected pairs, full or LoRA.

examples:
  crucible dpo --model native:runs/sft --data pairs.jsonl --out runs/dpo
  crucible dpo --model native:runs/sft --data pairs.jsonl --loss ipo --beta 0.5 --out runs/ipo
  crucible dpo --model hf:models/llama --data pairs.parquet --lora-rank 16 --nll-alpha 1.0 --out runs/rpo
  crucible eval humaneval --model native:runs/dpo --out runs/dpo-eval

Pairs: {"prompt": str or "messages": [...], "chosen": str, "rejected": str}. Reference log-probs
are computed once from the starting weights and cached in OUT. See docs/posttrain.md.
"""

from __future__ import annotations

import argparse

from crucible.cli import UsageError
from crucible.commands._posttrain import (add_common_arguments, config_from_args, end_process_group,
                                          load_policy_or_exit, stopped_message)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_arguments(p, "dpo")


def main(args) -> int:
    from crucible.posttrain.data import DataError, load_mixture
    from crucible.posttrain.render import TemplateError

    cfg = config_from_args(args, "dpo")
    try:   # every pair read and checked before anything is written
        train_pairs, val_pairs = load_mixture(cfg.data, pairs=True, seed=cfg.seed, val_fraction=cfg.val_fraction)
    except DataError as e:
        raise UsageError(str(e)) from None
    policy = load_policy_or_exit(cfg)
    from crucible.posttrain import dpo

    try:
        summary = dpo.train(cfg, policy, train_pairs, val_pairs, resume=args.resume, stop_after=args.stop_after,
                            progress=not args.no_progress)
    except (DataError, TemplateError) as e:
        raise UsageError(str(e)) from None
    finally:
        end_process_group()
    stopped_message(summary)
    return 0
