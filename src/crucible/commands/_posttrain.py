"""What `crucible sft`, `dpo` and `grpo` share: recipe flags, the config and resume policy, errors.

Not a command (cli.COMMANDS does not list it): the three commands import it. Flags, recipe loading
and the resume policy are crucible.train.config's and commands/pretrain.py's, for the method's
config class (crucible.posttrain.config).
"""

from __future__ import annotations

import argparse

from crucible.cli import UsageError

REPEATABLE = ("data", "reward")   # --data A --data B; other lists are comma-separated
RUN_CONFIG = "run_config.json"    # OUT/config.json is the final model's


def add_common_arguments(p: argparse.ArgumentParser, method: str) -> None:
    from crucible.commands.pretrain import add_config_flags
    from crucible.posttrain.config import CONFIGS

    p.add_argument("--config", metavar="RECIPE.toml", help="recipe file (every key is also a flag)")
    p.add_argument("--resume", action="store_true", help="continue OUT's latest checkpoint with its saved config")
    p.add_argument("--stop-after", type=int, metavar="STEPS",
                   help="save and stop after this many steps (as if preempted)")
    p.add_argument("--no-progress", action="store_true")
    add_config_flags(p, CONFIGS[method], repeatable=REPEATABLE)


def config_from_args(args, method: str):
    """The run's config: recipe < flags, or the saved one under --resume."""
    from crucible.commands.pretrain import config_overrides
    from crucible.posttrain.config import CONFIGS
    from crucible.train.config import ConfigError, run_config

    try:
        return run_config(args.config, config_overrides(args, CONFIGS[method]), resume=args.resume,
                          config_class=CONFIGS[method], saved_as=RUN_CONFIG)
    except ConfigError as e:
        raise UsageError(str(e)) from None


def load_policy_or_exit(cfg):
    from crucible.posttrain.policy import PolicyError, load_policy
    from crucible.posttrain.run import device_of

    try:
        return load_policy(cfg.model, lora_rank=cfg.lora_rank, device=device_of(cfg), dtype=cfg.dtype)
    except PolicyError as e:
        raise UsageError(str(e)) from None


def stopped_message(summary: dict) -> None:
    if "stopped_at" in summary:
        print(f"stopped after step {summary['stopped_at']}; continue with --resume --out OUT")
