"""Python: the system interpreter, isolated (-I) and without site-packages (-S).

The sandbox sees /usr only, so the interpreter is Debian's /usr/bin/python3 (override with
CRUCIBLE_SANDBOX_PYTHON); the project's own interpreter usually lives under a home directory that
the sandbox must not see.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache

from crucible.languages import Language
from crucible.sandbox import INSIDE, Limits, Outcome, run


def interpreter() -> str | None:
    explicit = os.environ.get("CRUCIBLE_SANDBOX_PYTHON")
    if explicit:
        return explicit
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(candidate):
            return candidate
    return shutil.which("python3")


@lru_cache(maxsize=1)
def version() -> str | None:
    exe = interpreter()
    if not exe:
        return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True)
    return out.stdout.strip().removeprefix("Python ") or None


def run_source(source: str, *, stdin: bytes | str = b"", limits: Limits, unsafe: bool = False) -> Outcome:
    out = run([interpreter(), "-I", "-S", f"{INSIDE}/main.py"], files={"main.py": source}, stdin=stdin,
              limits=limits, unsafe=unsafe)
    return reclassify_syntax_error(out)


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
