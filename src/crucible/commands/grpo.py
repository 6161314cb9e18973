"""RL from execution rewards (GRPO/DAPO): sample G answers per task, grade them in the sandbox, update.

examples:
  crucible grpo --model native:runs/sft --suite puzzles --language python --out runs/rl
  crucible grpo --model native:runs/sft --suite tasks:my_tasks.jsonl --group-size 8 --max-steps 50 --out runs/rl
  crucible grpo --model hf:models/llama --suite humaneval --lora-rank 16 --kl-beta 0.01 --out runs/rl-he
  crucible grpo --model native:runs/sft --suite puzzles --reward my_rewards.py:short_answers:0.1 --out runs/rl
  crucible grpo --model native:runs/sft --suite answers:arith_train.jsonl --out runs/rl-arith
  crucible eval puzzles --model native:runs/rl --language python --out runs/rl-eval

Rewards come from crucible's grader inside bubblewrap (pass 1, fail 0; sandbox failures drop the
group). tasks:FILE.jsonl takes puzzle-format tasks (id, prompt, answer, difficulty); answers:FILE.jsonl
answer-checked tasks (`crucible world --family arithmetic`; each task's mode). A --reward
function is called as function(task, completion) -> float | None. See docs/posttrain.md.
"""

from __future__ import annotations

import argparse

from crucible.cli import UsageError
from crucible.commands._posttrain import (add_common_arguments, config_from_args, end_process_group,
                                          load_policy_or_exit, stopped_message)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=4, help="parallel graders (default 4)")
    p.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="run model-written code without bubblewrap (prints a warning on every run)")
    add_common_arguments(p, "grpo")


def load_suite(spec: str, language: str, unsafe: bool):
    """humaneval | puzzles | tasks:FILE.jsonl (puzzle format) | answers:FILE.jsonl -> a grading suite."""
    from crucible.eval.suites import load_suite as suite_by_name
    from crucible.io import JsonlError
    from crucible.tasks.common import TaskError

    if spec.startswith("tasks:"):
        name, tasks_file = "puzzles", spec.removeprefix("tasks:")
    elif spec.startswith("answers:"):
        name, tasks_file = "answers", spec.removeprefix("answers:")
    elif spec in ("humaneval", "puzzles"):
        name, tasks_file = spec, None
    else:
        raise UsageError(f"--suite {spec}: expected humaneval, puzzles, tasks:FILE.jsonl or answers:FILE.jsonl")
    try:
        suite, _ = suite_by_name(name, language=language, tasks_file=tasks_file, unsafe=unsafe)
    except (TaskError, JsonlError) as e:
        raise UsageError(str(e)) from None
    return suite


def main(args) -> int:
    from crucible.sandbox import require_sandbox

    cfg = config_from_args(args, "grpo")
    require_sandbox(args.unsafe_no_sandbox)   # every reward runs model-written code
    suite = load_suite(cfg.suite, cfg.language, args.unsafe_no_sandbox)
    from crucible.posttrain.rewards import RewardError, load_reward_fn

    try:
        reward_fns = [load_reward_fn(spec) for spec in cfg.reward]
    except RewardError as e:
        raise UsageError(str(e)) from None
    policy = load_policy_or_exit(cfg)
    from crucible.posttrain import grpo

    try:
        summary = grpo.train(cfg, policy, suite, reward_fns, resume=args.resume, stop_after=args.stop_after,
                             progress=not args.no_progress, workers=args.workers)
    finally:
        end_process_group()
    stopped_message(summary)
    return 0
