"""C++: Debian's g++ (C++17 with GNU extensions, -O2).

Compiled once per distinct source (see `build.py`), run as a native binary under the caller's
limits. `bits/stdc++.h` works; its parse costs about a second of compile time per program, which the
build cache pays once.
"""

from __future__ import annotations

from functools import lru_cache

from crucible.languages import Language
from crucible.languages.build import Recipe, build_and_run, tool_version
from crucible.sandbox import Limits, Outcome

CXX = "/usr/bin/g++"
RECIPE = Recipe(source_name="main.cpp", compile=(CXX, "-O2", "-std=gnu++17", "-pipe", "-o", "main", "main.cpp"),
                artifacts=("main",), execute=("./main",))


@lru_cache(maxsize=1)
def version() -> str | None:
    return tool_version([CXX, "-dumpfullversion"])


def run_source(source: str, *, stdin: bytes | str = b"", limits: Limits, unsafe: bool = False) -> Outcome:
    return build_and_run("cpp", version(), RECIPE, source, stdin=stdin, limits=limits, unsafe=unsafe)


LANGUAGE = Language(
    name="cpp", display="C++", fence_tags=("cpp", "c++", "cxx", "cc", "hpp"), source_name="main.cpp",
    aliases=("c++", "cxx", "g++"), stop_sequences=("\n}\n",), version=version, run=run_source,
    compiled=True, install="apt: g++",
)
