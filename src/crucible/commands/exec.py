"""Run one untrusted program in the sandbox and report what happened.

examples:
  crucible exec --lang python prog.py
  crucible exec --lang python prog.py --stdin input.txt --timeout 2 --memory-mb 256 --json
  crucible exec --lang rust main.rs --json       # compile errors come back as status compile_error
  crucible exec --lang python uses_numpy.py --python-env envs/sci   # packages from `crucible sandbox env`

The exit code is 0 whatever the program did (its status says that), 2 for bad usage or when the
sandbox cannot run here. With --json, one object: {"status", "exit_code", "stdout", "stderr",
"wall_s", "cpu_s"} (plus "detail", and "python_env" with --python-env).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from crucible.cli import UsageError

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="source file of the program")
    p.add_argument("--lang", default="python", help="language (see `crucible languages`; default python)")
    p.add_argument("--stdin", metavar="FILE", help="feed this file to the program's standard input")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                   help="CPU-time limit; the wall deadline is 2x + 2 s (default 10)")
    p.add_argument("--wall-timeout", type=float, default=None, metavar="SECONDS", help="override the wall deadline")
    p.add_argument("--memory-mb", type=int, default=1024, metavar="MB", help="address-space limit (default 1024)")
    p.add_argument("--max-output", type=int, default=1 << 20, metavar="BYTES",
                   help="cap on each of stdout and stderr (default 1 MiB)")
    p.add_argument("--python-env", metavar="DIR",
                   help="Python only: let the program import this env's packages (`crucible sandbox env`)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="run without bubblewrap (rlimits and deadline only); prints a warning")


def main(args) -> int:
    from crucible.languages import get, run_program
    from crucible.sandbox import Limits, require_sandbox
    from crucible.commands import usage_errors
    from crucible.sandbox.pyenv import PythonEnvError, from_args

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        language = get(args.lang)
    except KeyError as e:
        raise UsageError(str(e.args[0])) from None
    if args.python_env and language.name != "python":
        raise UsageError(f"--python-env applies to Python programs, not --lang {args.lang}")
    with usage_errors(PythonEnvError):
        python_env = from_args(args)
    if args.timeout <= 0 or args.memory_mb <= 0 or args.max_output <= 0:
        raise UsageError("--timeout, --memory-mb and --max-output must be positive")
    stdin = b""
    if args.stdin:
        if not Path(args.stdin).is_file():
            raise UsageError(f"{args.stdin}: no such file")
        stdin = Path(args.stdin).read_bytes()
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    require_sandbox(args.unsafe_no_sandbox)
    limits = Limits(timeout_s=args.timeout, wall_s=args.wall_timeout, memory_mb=args.memory_mb,
                    output_bytes=args.max_output)
    outcome = run_program(language, source, stdin=stdin, limits=limits, unsafe=args.unsafe_no_sandbox,
                          python_env=python_env)
    if args.json:
        record = {"python_env": python_env.record()} if python_env else {}
        print(json.dumps(outcome.to_json() | record, ensure_ascii=False))
    else:
        sys.stdout.write(outcome.stdout)
        sys.stderr.write(outcome.stderr)
        detail = f" ({outcome.detail})" if outcome.detail else ""
        print(f"[{outcome.status}{detail}] exit={outcome.exit_code} wall={outcome.wall_s:.3f}s "
              f"cpu={outcome.cpu_s:.3f}s", file=sys.stderr)
    return 0
