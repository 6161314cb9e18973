"""Run a recipe's stages (world, eval, mine, sft, compare, gate, ...) in order, resumably, with gates.

examples:
  crucible run recipes/improve_world.toml --out runs/loop          # runs what is not done yet
  crucible run curriculum --out runs/curriculum                     # rounds that follow the curriculum
  crucible run recipes/improve_world.toml --out runs/loop --force sft1   # redo sft1 and what follows
  crucible run recipes/improve_world.toml --out runs/loop --ray auto     # eval, mine, swe on the cluster

Each stage's output is in RUN/<stage>/; RUN/eval_results.jsonl gets a row per stage (its metrics and
gate checks). A finished stage is skipped on a re-run and a killed run resumes; a recipe whose
finished stages changed is refused unless --force names the stage to redo. Exit codes: 0 done,
3 a gate failed (which, and by how much), 2 bad recipe or usage, else the failing stage's code.
With --ray ADDRESS every stage whose command takes --ray (eval, mine, swe grade, swe run) gets it,
unless the stage sets its own; other stages run here as before (docs/scale.md). The recipe format
is described in crucible.improve.recipe; a recipe branches on what its stages found with
`{stage.key}` values and `when` conditions, and its `curriculum` stages choose each round's level
(RUN/curriculum.jsonl; crucible.improve.values, docs/improve.md).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", metavar="RECIPE.toml", help="a recipe file, or the name of a shipped one")
    p.add_argument("--out", required=True, metavar="RUN", help="run directory")
    p.add_argument("--force", metavar="STAGE", help="redo this stage and every stage after it")
    p.add_argument("--ray", metavar="ADDRESS", help="pass --ray ADDRESS to every stage whose command takes it "
                                                     "(a machine setting: finished stages stay finished)")


def stage_kinds() -> set[str]:
    import importlib

    from crucible.cli import COMMANDS
    from crucible.improve.recipe import OWN_KINDS

    kinds = set(OWN_KINDS)
    for name in COMMANDS:
        if name in ("run", "serve", "chat"):
            continue
        try:
            importlib.import_module(f"crucible.commands.{name.replace('-', '_')}")
        except ModuleNotFoundError:
            continue
        kinds.add(name)
    return kinds


def takes_ray(argv: list[str]) -> bool:
    """Whether the command line's command (swe: its action) has a --ray option."""
    import argparse

    from crucible.cli import build_parser

    parser = build_parser()
    for word in argv:  # down through sub-commands: crucible swe run ...
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or word not in sub.choices:
            break
        parser = sub.choices[word]
    return "--ray" in parser._option_string_actions


def with_ray(cli_main, address: str | None):
    """cli_main, adding --ray ADDRESS to the stages that take it and do not set their own."""
    if not address:
        return cli_main
    return lambda argv: cli_main(argv + ["--ray", address] if "--ray" not in argv and takes_ray(argv) else argv)


def main(args) -> int:
    import sys

    from crucible.cli import main as cli_main
    from crucible.commands import usage_errors
    from crucible.improve.compare import TaskSetMismatch
    from crucible.improve.gates import GateError, GateFailed, describe
    from crucible.improve.recipe import RecipeError, load_run_recipe
    from crucible.improve.run import RunError, run_recipe
    from crucible.io import JsonlError
    from crucible.report.build import ReportError
    from crucible.train.config import ConfigError, recipe_file

    with usage_errors(RecipeError, ConfigError):
        recipe = load_run_recipe(recipe_file(args.recipe), stage_kinds())
    try:
        with usage_errors(GateError, ReportError, JsonlError, TaskSetMismatch):
            run_recipe(recipe, args.out, with_ray(cli_main, args.ray), force=args.force)
    except RunError as e:
        if e.exit_code == 2:
            from crucible.cli import UsageError

            raise UsageError(str(e)) from None
        print(f"crucible run: {e}", file=sys.stderr)
        return e.exit_code
    except GateFailed as e:
        for c in e.checks:
            print(f"crucible run: stage {e.stage}: {describe(c)}", file=sys.stderr if not c["passed"] else sys.stdout)
        return 3
    print(f"[run] done: {args.out}")
    return 0
