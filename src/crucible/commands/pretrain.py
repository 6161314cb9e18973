"""Pretrain a GPT from scratch (Muon/NorMuon recipe, bits-per-byte validation, atomic checkpoints).

examples:
  crucible pretrain                                          # default corpus, prepared on first use
  crucible pretrain --config recipes/pretrain_tiny.toml --out runs/tiny
  crucible pretrain --config recipes/golf.toml --max-minutes 10 --out runs/golf
  crucible pretrain --config recipes/baseline_adamw.toml --out runs/adamw
  crucible pretrain --out runs/tiny --resume                 # continue the latest checkpoint
  torchrun --nproc_per_node 8 -m crucible pretrain --config recipes/golf.toml --dist fsdp

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


def add_arguments(p: argparse.ArgumentParser) -> None:
    import dataclasses

    from crucible.train.config import FIELDS

    p.add_argument("--config", metavar="RECIPE.toml", help="recipe file (see recipes/)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/latest with the run's saved config")
    p.add_argument("--stop-after", type=int, metavar="STEPS", help="save and stop after this many steps (as if preempted)")
    p.add_argument("--no-progress", action="store_true")
    g = p.add_argument_group("recipe keys (override the recipe)")
    for name, f in FIELDS.items():
        kind = list if f.default is dataclasses.MISSING else type(f.default)
        flag = "--" + name.replace("_", "-")
        if kind is bool:
            g.add_argument(flag, type=_bool, default=None, metavar="BOOL", dest=name)
        elif kind is list:
            g.add_argument(flag, type=lambda s: [x for x in s.split(",") if x], default=None, metavar="A,B",
                           dest=name)
        else:
            g.add_argument(flag, type=kind, default=None, metavar=kind.__name__.upper(), dest=name)


RESUME_MAY_CHANGE = {"eval_every", "log_every", "ckpt_every", "keep_checkpoints", "threads", "compile"}


def main(args) -> int:
    import json
    import os
    from pathlib import Path

    from crucible.train.config import FIELDS, ConfigError, PretrainConfig, build_config, validate

    overrides = {k: getattr(args, k) for k in FIELDS if getattr(args, k, None) is not None}
    try:
        if args.resume:
            out = Path(overrides.get("out") or (build_config(args.config).out if args.config else "runs/pretrain"))
            saved = out / "config.json"
            if not saved.is_file():
                raise UsageError(f"{saved}: no run to resume")
            cfg = PretrainConfig(**json.loads(saved.read_text()))
            changed = [k for k, v in overrides.items() if k != "out" and getattr(cfg, k) != v]
            bad = [k for k in changed if k not in RESUME_MAY_CHANGE]
            if bad:
                raise UsageError(f"--resume continues {saved} as it was; cannot change {', '.join(bad)}")
            for k in changed:
                setattr(cfg, k, overrides[k])
            validate(cfg)
        else:
            cfg = build_config(args.config, overrides)
            if (Path(cfg.out) / "latest").exists():
                raise UsageError(f"{cfg.out} already has checkpoints: pass --resume, or choose another --out")
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
