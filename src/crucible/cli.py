"""The `crucible` command: a thin dispatcher over `crucible.commands.<name>` modules.

Each command module defines `add_arguments(parser)` and `main(args) -> int`, imports heavy
libraries (torch, transformers) only inside `main`, and sets a module docstring whose first
line is the help summary and whose remainder (examples) becomes the epilog. Bad usage exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Order is the order of `crucible --help`. A module that is not there yet is skipped.
COMMANDS = [
    "exec", "eval", "report", "languages", "sandbox",
    "tokenizer", "data", "pretrain", "golf", "sft", "dpo", "grpo",
    "serve", "chat", "swe",
    "compare", "world", "vote", "probes", "gate", "mine", "invent", "curriculum", "run",
]


class UsageError(Exception):
    """Bad input from the user: printed without a traceback, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crucible",
        description="Measure, train and improve small code models.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"crucible.commands.{name.replace('-', '_')}")
        except ModuleNotFoundError as e:
            if e.name == f"crucible.commands.{name.replace('-', '_')}":
                continue
            raise
        doc = (module.__doc__ or "").strip()
        summary, _, epilog = doc.partition("\n")
        p = sub.add_parser(name, help=summary.replace("%", "%%"), description=summary, epilog=epilog.strip() or None,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_main=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    from crucible.sandbox import SandboxUnavailable

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_main", None):
        parser.print_help()
        return 2
    try:
        return int(args._main(args) or 0)
    except (UsageError, SandboxUnavailable) as e:
        print(f"crucible {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
