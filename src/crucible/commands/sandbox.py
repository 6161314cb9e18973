"""Build the opt-in Python env that sandboxed programs may import from (numpy, pandas, ...).

examples:
  crucible sandbox env --packages numpy,pandas --out envs/sci          # from the package registries
  crucible sandbox env --requirements reqs.txt --out envs/bcb          # version ranges, many packages
  crucible sandbox env --packages ./wheels/mypkg-1.0-py3-none-any.whl --no-index --out envs/mine
  crucible eval puzzles --samples s.jsonl --python-env envs/sci --out runs/pz-sci
  crucible exec --lang python prog.py --python-env envs/sci

The env is built for the sandbox's interpreter (Debian's /usr/bin/python3), checked by importing
every installed module inside the sandbox, and described by DIR/crucible-env.json. Only this command
installs anything; grading with --python-env never does. See crucible/sandbox/pyenv.py.
"""

from __future__ import annotations

import argparse

from crucible.cli import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    env = sub.add_parser("env", help="pip-install packages into a new env DIR for sandboxed Python",
                         description="pip-install packages into a new env DIR for sandboxed Python",
                         epilog=__doc__.partition("\n")[2].strip(), formatter_class=argparse.RawDescriptionHelpFormatter)
    env.add_argument("--packages", action="append", default=[], metavar="A,B",
                     help="requirements, comma-separated (repeatable): names, name==version, local wheels/dirs")
    env.add_argument("--requirements", metavar="FILE", help="a pip requirements file")
    env.add_argument("--out", required=True, metavar="DIR", help="the env to create (must not exist, or be empty)")
    env.add_argument("--no-index", action="store_true", help="do not use package indexes (local files, --find-links)")
    env.add_argument("--find-links", action="append", default=[], metavar="DIR|URL",
                     help="also look for wheels here (repeatable)")
    env.add_argument("--unsafe-no-sandbox", action="store_true",
                     help="check imports without bubblewrap (prints a warning)")
    env.add_argument("--no-progress", action="store_true")


def main(args) -> int:
    from pathlib import Path

    from crucible.sandbox import require_sandbox
    from crucible.commands import usage_errors
    from crucible.sandbox.pyenv import PythonEnvError, build, parse_packages

    with usage_errors(PythonEnvError):
        requirements = parse_packages(args.packages)
    if args.requirements and not Path(args.requirements).is_file():
        raise UsageError(f"{args.requirements}: no such requirements file")
    if not requirements and not args.requirements:
        raise UsageError("nothing to install: give --packages and/or --requirements")
    require_sandbox(args.unsafe_no_sandbox)  # the import check runs in the sandbox
    pip_options = (["--no-index"] if args.no_index else []) + [f"--find-links={f}" for f in args.find_links]
    with usage_errors(PythonEnvError):
        env = build(requirements, args.out, requirements_file=args.requirements, pip_options=pip_options,
                    unsafe=args.unsafe_no_sandbox, progress=not args.no_progress)
    m = env.manifest
    print(f"built {env.root} in {m['build_s']:.1f} s: {m['size_bytes'] / 1e6:.1f} MB, Python {m['python']['version']}, "
          f"id {m['id']}")
    for name, version in m["packages"].items():
        print(f"  {name} {version}")
    broken = {k: v for k, v in m["modules"].items() if v != "ok"}
    for name, why in broken.items():
        print(f"  warning: `import {name}` fails in the sandbox ({why})")
    print(f"use it with --python-env {env.root}")
    return 0
