"""C++: Debian's g++ (C++17 with GNU extensions, -O2).

Compiled once per distinct source (see `build.py`), run as a native binary under the caller's
limits. `#include <bits/stdc++.h>` (what most one-shot C++ starts with, and what the translated
HumanEval header uses) costs ~1.5 s of parsing per program; `make toolchains` precompiles it for
exactly these flags into /opt/toolchains/cxx-pch (100 MB), which brings a build to ~0.3 s. A stale or
missing header is ignored by g++ (it falls back to parsing the real one).
"""

from __future__ import annotations

from functools import lru_cache

from crucible.languages import Language
from crucible.languages.build import Recipe, build_and_run, tool_version
from crucible.sandbox import Limits, Outcome

import os

CXX = "/usr/bin/g++"
FLAGS = ("-O2", "-std=gnu++17")  # the precompiled header is built with exactly these
PCH_DIR = os.environ.get("CRUCIBLE_CXX_PCH", "/opt/toolchains/cxx-pch")


def recipe() -> Recipe:
    pch = ("-I", PCH_DIR) if os.path.exists(f"{PCH_DIR}/bits/stdc++.h.gch") else ()
    return Recipe(source_name="main.cpp", compile=(CXX, *FLAGS, *pch, "-pipe", "-o", "main", "main.cpp"),
                  artifacts=("main",), execute=("./main",))


@lru_cache(maxsize=1)
def version() -> str | None:
    return tool_version([CXX, "-dumpfullversion"])


def run_source(source: str, *, stdin: bytes | str = b"", limits: Limits, unsafe: bool = False) -> Outcome:
    return build_and_run("cpp", version(), recipe(), source, stdin=stdin, limits=limits, unsafe=unsafe)


LANGUAGE = Language(
    tool="g++", name="cpp", display="C++", fence_tags=("cpp", "c++", "cxx", "cc", "hpp"), source_name="main.cpp",
    aliases=("c++", "cxx", "g++"), version=version, run=run_source,
    compiled=True, install="apt: g++",
)
