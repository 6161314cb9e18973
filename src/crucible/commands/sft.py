"""Supervised fine-tuning on conversations, agent trajectories or prompt/completion text (full or LoRA).

examples:
  crucible sft --model native:runs/base --data chats.jsonl --out runs/sft
  crucible sft --model native:runs/base --data a.jsonl:3 --data b.parquet --max-steps 200 --out runs/mix
  crucible sft --model hf:models/llama --data chats.jsonl --lora-rank 16 --lr 2e-4 --out runs/lora
  crucible sft --model native:runs/base --data chats.jsonl --show-mask 3 --out runs/peek   # look, then exit
  crucible sft --out runs/sft --resume                        # continue the latest checkpoint
  crucible sft merge --model hf:runs/lora --out runs/merged   # fold a LoRA adapter into its base
  crucible eval humaneval --model native:runs/sft --out runs/sft-eval

Every recipe key is also a flag (--config recipe.toml for the rest). Data: {"messages": [...]}
(tool calls in OpenAI's shape, with "tools"), {"prompt", "completion"}; JSONL, parquet or
save_to_disk directories. See docs/posttrain.md.
"""

from __future__ import annotations

import argparse

from crucible.cli import UsageError
from crucible.commands._posttrain import (add_common_arguments, config_from_args, end_process_group,
                                          load_policy_or_exit, stopped_message)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=("train", "merge"), default="train",
                   help="train (default), or merge a LoRA adapter (--model hf:ADAPTER_DIR) into its base")
    p.add_argument("--show-mask", type=int, metavar="N", default=0,
                   help="print N rendered examples with trained tokens highlighted, write OUT/mask.html, exit")
    add_common_arguments(p, "sft")


def main(args) -> int:
    if args.action == "merge":
        return merge(args)
    from crucible.posttrain.data import DataError, load_mixture
    from crucible.posttrain.render import TemplateError

    cfg = config_from_args(args, "sft")
    try:   # every record read and checked before anything is written
        train_examples, val_examples = load_mixture(cfg.data, seed=cfg.seed, val_fraction=cfg.val_fraction)
    except DataError as e:
        raise UsageError(str(e)) from None
    policy = load_policy_or_exit(cfg)
    if cfg.new_tokens:
        from crucible.posttrain.policy import PolicyError, add_tokens

        try:
            add_tokens(policy, cfg.new_tokens)
        except PolicyError as e:
            raise UsageError(str(e)) from None
    if args.show_mask:
        return show_mask(policy, train_examples[:args.show_mask], cfg.out)
    from crucible.posttrain import sft

    try:
        summary = sft.train(cfg, policy, train_examples, val_examples, resume=args.resume,
                            stop_after=args.stop_after, progress=not args.no_progress)
    except (DataError, TemplateError) as e:
        raise UsageError(str(e)) from None
    finally:
        end_process_group()
    stopped_message(summary)
    return 0


def show_mask(policy, examples, out: str) -> int:
    import sys
    from pathlib import Path

    from crucible.posttrain.data import DataError
    from crucible.posttrain.render import TemplateError, show, show_html

    try:
        rendered = [(ex.where, *policy.renderer.example(ex)) for ex in examples]
    except (DataError, TemplateError) as e:
        raise UsageError(str(e)) from None
    color = sys.stdout.isatty()
    for where, ids, mask in rendered:
        print(f"== {where}: {len(ids)} tokens, {sum(mask)} trained")
        print(show(policy.renderer, ids, mask, color=color))
    page = Path(out) / "mask.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(show_html(policy.renderer, rendered))
    print(f"wrote {page}")
    return 0


def merge(args) -> int:
    """Fold an HF LoRA adapter into its base and save a plain model to --out."""
    from pathlib import Path

    from crucible.posttrain.policy import PolicyError, parse_model_spec

    if not args.model or not args.out:
        raise UsageError("sft merge needs --model hf:ADAPTER_DIR and --out DIR")
    try:
        kind, path = parse_model_spec(args.model)
    except PolicyError as e:
        raise UsageError(str(e)) from None
    if kind != "hf" or not (Path(path) / "adapter_config.json").is_file():
        raise UsageError(f"{args.model}: not an HF LoRA adapter directory (no adapter_config.json); native "
                         "runs already hold merged weights")
    from crucible.posttrain.policy import merge_adapter

    try:
        merge_adapter(path, args.out)
    except PolicyError as e:
        raise UsageError(str(e)) from None
    print(f"merged {path} into its base: {args.out}")
    return 0
