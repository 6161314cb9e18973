"""What `crucible sft`, `dpo` and `grpo` share: recipe flags, config and resume rules, errors.

Not a command (cli.COMMANDS does not list it): the three commands import it.
"""

from __future__ import annotations

import argparse

from crucible.cli import UsageError

# keys a resumed run may change: how it logs and checkpoints, not what it computes
RESUME_MAY_CHANGE = {"log_every", "eval_every", "ckpt_every", "keep_checkpoints"}


REPEATABLE = ("data", "reward")   # --data A --data B; other lists are comma-separated


def add_flags(p: argparse.ArgumentParser, method: str) -> None:
    """A flag for every recipe key of `method` (--lora-rank 8, --data FILE:2 --data FILE2, ...)."""
    import dataclasses

    from crucible.commands.pretrain import _bool
    from crucible.posttrain.config import FIELDS, KEYS

    g = p.add_argument_group("recipe keys (override the recipe)")
    for name in KEYS[method]:
        f = FIELDS[name]
        kind = list if f.default is dataclasses.MISSING else type(f.default)
        flag = "--" + name.replace("_", "-")
        if name in REPEATABLE:
            g.add_argument(flag, action="append", default=None, metavar="VALUE", dest=name)
        elif kind is bool:
            g.add_argument(flag, type=_bool, default=None, metavar="BOOL", dest=name)
        elif kind is list:
            g.add_argument(flag, type=lambda s: [x for x in s.split(",") if x], default=None, metavar="A,B", dest=name)
        else:
            g.add_argument(flag, type=kind, default=None, metavar=kind.__name__.upper(), dest=name)


def add_common_arguments(p: argparse.ArgumentParser, method: str) -> None:
    p.add_argument("--config", metavar="RECIPE.toml", help="recipe file (every key is also a flag)")
    p.add_argument("--resume", action="store_true", help="continue OUT's latest checkpoint with its saved config")
    p.add_argument("--stop-after", type=int, metavar="STEPS",
                   help="save and stop after this many steps (as if preempted)")
    p.add_argument("--no-progress", action="store_true")
    add_flags(p, method)


def config_from_args(args, method: str):
    """The run's PostTrainConfig: recipe < flags, or the saved one under --resume."""
    import json
    from pathlib import Path

    from crucible.posttrain.config import FIELDS, KEYS, PostTrainConfig, build_config, validate
    from crucible.train.config import ConfigError

    overrides = {k: getattr(args, k) for k in KEYS[method] if getattr(args, k, None) is not None}
    try:
        if not args.resume:
            cfg = build_config(method, args.config, overrides)
            if (Path(cfg.out) / "latest").exists():
                raise UsageError(f"{cfg.out} already has checkpoints: pass --resume, or choose another --out")
            return cfg
        out = overrides.get("out") or (build_config(method, args.config).out if args.config else None)
        if not out:
            raise UsageError("--resume needs --out")
        saved = Path(out) / "run_config.json"
        if not saved.is_file():
            raise UsageError(f"{saved}: no run to resume")
        cfg = PostTrainConfig(**{k: v for k, v in json.loads(saved.read_text()).items() if k in FIELDS})
        bad = [k for k, v in overrides.items() if k != "out" and getattr(cfg, k) != v and k not in RESUME_MAY_CHANGE]
        if bad:
            raise UsageError(f"--resume continues {saved} as it was; cannot change {', '.join(bad)}")
        for k, v in overrides.items():
            setattr(cfg, k, v)
        validate(cfg, method)
        return cfg
    except ConfigError as e:
        raise UsageError(str(e)) from None


def load_policy_or_exit(cfg, *, lora_rank: int | None = None):
    from crucible.posttrain.policy import PolicyError, load_policy
    from crucible.posttrain.run import device_of

    try:
        return load_policy(cfg.model, lora_rank=cfg.lora_rank if lora_rank is None else lora_rank,
                           device=device_of(cfg), dtype=cfg.dtype)
    except PolicyError as e:
        raise UsageError(str(e)) from None


def stopped_message(summary: dict) -> None:
    if "stopped_at" in summary:
        print(f"stopped after step {summary['stopped_at']}; continue with --resume --out OUT")
