"""Pretrain a GPT from scratch (Muon/NorMuon recipe, bits-per-byte validation, atomic checkpoints).

examples:
  crucible pretrain                                          # default corpus, prepared on first use
  crucible pretrain --config pretrain_tiny --out runs/tiny   # a shipped recipe (crucible/recipes/)
  crucible pretrain --config golf --max-minutes 10 --out runs/golf
  crucible pretrain --config my_recipe.toml --out runs/mine
  crucible pretrain --out runs/tiny --resume                 # continue the latest checkpoint
  torchrun --nproc_per_node 8 -m crucible pretrain --config golf --dist fsdp

Every recipe key is also a flag (--matrix-lr 0.03, --optimizer adamw, --sources a/,b.jsonl);
flags override the recipe. A wall-clock budget (--max-minutes) drives the schedule by time.
"""

from __future__ import annotations

import argparse

from crucible.cli import UsageError


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def add_config_flags(p: argparse.ArgumentParser, config_class, title: str = "recipe keys (override the recipe)",
                     repeatable: tuple[str, ...] = ()) -> None:
    """One flag per field of a config dataclass (--matrix-lr, --sources a,b, --tie-embeddings yes);
    list fields named in `repeatable` are given once per value (--data a --data b)."""
    import dataclasses

    g = p.add_argument_group(title)
    for f in dataclasses.fields(config_class):
        kind = list if f.default is dataclasses.MISSING else type(f.default)
        flag = "--" + f.name.replace("_", "-")
        if f.name in repeatable:
            g.add_argument(flag, action="append", default=None, metavar="VALUE", dest=f.name)
        elif kind is bool:
            g.add_argument(flag, type=_bool, default=None, metavar="BOOL", dest=f.name)
        elif kind is list:
            g.add_argument(flag, type=lambda s: [x for x in s.split(",") if x], default=None, metavar="A,B",
                           dest=f.name)
        else:
            g.add_argument(flag, type=kind, default=None, metavar=kind.__name__.upper(), dest=f.name)


def config_overrides(args, config_class) -> dict:
    """The config fields given as flags."""
    import dataclasses

    return {f.name: getattr(args, f.name) for f in dataclasses.fields(config_class)
            if getattr(args, f.name, None) is not None}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from crucible.train.config import PretrainConfig

    p.add_argument("--config", metavar="RECIPE", help="recipe file, or a shipped recipe's name (pretrain_tiny, golf, "
                                                        "default, baseline_adamw)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/latest with the run's saved config")
    p.add_argument("--stop-after", type=int, metavar="STEPS", help="save and stop after this many steps (as if preempted)")
    p.add_argument("--no-progress", action="store_true")
    add_config_flags(p, PretrainConfig)


def main(args) -> int:
    import os

    from crucible.train.config import ConfigError, PretrainConfig, run_config

    try:
        cfg = run_config(args.config, config_overrides(args, PretrainConfig), resume=args.resume)
    except ConfigError as e:
        raise UsageError(str(e)) from None

    from crucible.data.corpus import CorpusError
    from crucible.data.prepare import PrepareError
    from crucible.train.pretrain import train

    try:
        summary = train(cfg, resume=args.resume, stop_after=args.stop_after, progress=not args.no_progress)
    except (FileNotFoundError, PrepareError, CorpusError) as e:
        raise UsageError(str(e)) from None
    finally:
        from crucible.train import dist

        dist.cleanup()
    if "stopped_at" in summary and os.environ.get("RANK", "0") == "0":
        print(f"stopped after step {summary['stopped_at']}; continue with --resume --out {summary['out']}")
    return 0
