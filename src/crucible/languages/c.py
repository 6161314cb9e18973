"""C: Debian's gcc (C17 with GNU extensions, -O2, libm linked).

Programs are compiled once per distinct source (see `build.py`) and run as a native binary under
the caller's limits, RLIMIT_AS included. No big-integer library is linked: that is part of what
the multi-language experiment measures.
"""

from __future__ import annotations

from functools import lru_cache

from crucible.languages import Language
from crucible.languages.build import Recipe, build_and_run, tool_version
from crucible.sandbox import Limits, Outcome

CC = "/usr/bin/gcc"
RECIPE = Recipe(source_name="main.c", compile=(CC, "-O2", "-std=gnu17", "-pipe", "-o", "main", "main.c", "-lm"),
                artifacts=("main",), execute=("./main",))


@lru_cache(maxsize=1)
def version() -> str | None:
    return tool_version([CC, "-dumpfullversion"])


def run_source(source: str, *, stdin: bytes | str = b"", limits: Limits, unsafe: bool = False) -> Outcome:
    return build_and_run("c", version(), RECIPE, source, stdin=stdin, limits=limits, unsafe=unsafe)


LANGUAGE = Language(
    tool="gcc", name="c", display="C", fence_tags=("c", "h"), source_name="main.c", aliases=("gcc",),
    version=version, run=run_source, compiled=True,
    install="apt: gcc", comment="//",
)
