"""What `crucible sft`, `dpo` and `grpo` share: recipe flags, the config and resume policy, errors.

Not a command (cli.COMMANDS does not list it): the three commands import it. Flags, recipe loading
and the resume policy are crucible.train.config's and commands/pretrain.py's, for the method's
config class (crucible.posttrain.config).
"""

from __future__ import annotations

import argparse
import os

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
    """The policy on this process's device (under torchrun: its rank's GPU; the process group starts here)."""
    from crucible.posttrain.policy import PolicyError, load_policy
    from crucible.train import dist

    try:
        device = dist.init(cfg.device).device
    except RuntimeError as e:          # --device cuda without a GPU
        raise UsageError(str(e)) from None
    try:
        return load_policy(cfg.model, lora_rank=cfg.lora_rank, device=str(device), dtype=cfg.dtype)
    except PolicyError as e:
        raise UsageError(str(e)) from None


def end_process_group() -> None:
    """Leave torchrun's process group (a no-op in one process)."""
    from crucible.train import dist

    dist.cleanup()


def stopped_message(summary: dict) -> None:
    if "stopped_at" in summary and os.environ.get("RANK", "0") == "0":
        print(f"stopped after step {summary['stopped_at']}; continue with --resume --out OUT")
