"""Python: the system interpreter, isolated (-I) and without site-packages (-S).

The sandbox sees /usr only, so the interpreter is Debian's /usr/bin/python3 (override with
CRUCIBLE_SANDBOX_PYTHON); the project's own interpreter usually lives under a home directory that
the sandbox must not see. Packages are opt-in: `python_env` (a `crucible.sandbox.pyenv` env) is
bound read-only and put on sys.path by a launcher; see that module for why this way.

A program that dies of `No module named 'X'` gets the detail "missing module X" (still a
runtime_error: the model chose to import it), so reports can count what the environment lacked.
"""

from __future__ import annotations

import re

from crucible.languages import Language
from crucible.sandbox import INSIDE, Limits, Outcome, run
# The sandbox's interpreter and how to launch it with an env live with the env (no import cycle);
# re-exported here, where the language is.
from crucible.sandbox.pyenv import PythonEnv, interpreter, launch, version  # noqa: F401

MISSING_MODULE = "missing module"
NO_MODULE = re.compile(r"(?:ModuleNotFoundError|ImportError)\b[^:\n]*: No module named '([^']+)'")


def run_source(source: str, *, stdin: bytes | str = b"", limits: Limits, unsafe: bool = False,
               python_env: PythonEnv | None = None) -> Outcome:
    prefix, binds, variables = launch(python_env, unsafe)
    out = run([*prefix, f"{INSIDE}/main.py"], files={"main.py": source}, stdin=stdin, limits=limits,
              ro_binds=binds, env=variables, unsafe=unsafe)
    return name_missing_module(reclassify_syntax_error(out))


def missing_module(text: str) -> str | None:
    """The module named by a `No module named 'X'` error that `text` starts with, if any."""
    m = NO_MODULE.match(text)
    return m.group(1) if m else None


def name_missing_module(out: Outcome) -> Outcome:
    """A crash whose final error (the last stderr line) is a missing module says which one."""
    last = out.stderr.strip().splitlines()[-1:] or [""]
    module = missing_module(last[0]) if out.status == "runtime_error" else None
    if module:
        out.detail = f"{MISSING_MODULE} {module}"
    return out


def reclassify_syntax_error(out: Outcome) -> Outcome:
    """A program that does not parse is a compile error, as in the compiled languages.

    The main module failing to parse prints the error without a "Traceback" header; a SyntaxError
    raised at run time (eval, compile, import of a generated module) always has one.
    """
    last = out.stderr.strip().splitlines()[-1:] or [""]
    if (out.status == "runtime_error" and "Traceback (most recent call last)" not in out.stderr
            and last[0].split(":")[0] in ("SyntaxError", "IndentationError", "TabError")):
        out.status, out.detail = "compile_error", last[0][:300]
    return out


LANGUAGE = Language(
    tool="python", name="python", fence_tags=("python", "py", "python3"), source_name="main.py",
    aliases=("py", "python3"), version=version, run=run_source,
    install="apt: python3 (Debian's, standard library only)", comment="#", display="Python",
)
