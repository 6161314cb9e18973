"""Zig: PyPI's `ziglang` wheel (pinned 0.13.0) installed under /opt/toolchains/zig.

0.13 is pinned because Zig's standard library breaks between releases and models know the older
`std.io.getStdOut().writer()` API. Builds use ReleaseSafe (overflow and bounds checks stay on, so
they show up as runtime errors) with `-fstrip`, which skips compiling the DWARF-reading panic handler
(5 s -> 0.3 s per program). The compiler-rt library every build needs is prebuilt by `make toolchains`
into a read-only global cache that each build copies into its own work dir (~1 s saved per build;
relative paths, so --unsafe-no-sandbox builds share nothing either).
"""

from __future__ import annotations

import os
from functools import lru_cache

from crucible.languages import Language
from crucible.languages.build import Recipe, build_and_run, tool_version
from crucible.sandbox import Limits, Outcome

HOME = os.environ.get("CRUCIBLE_ZIG_HOME", "/opt/toolchains/zig")
ZIG = f"{HOME}/ziglang/zig"
WARM_CACHE = f"{HOME}/global-cache"
FLAGS = "-O ReleaseSafe -fstrip"
RECIPE = Recipe(
    source_name="main.zig",
    compile=("/bin/sh", "-c", f"if [ -d {WARM_CACHE} ]; then cp -r {WARM_CACHE} .zig-global; fi; "
             f"exec {ZIG} build-exe main.zig {FLAGS} --cache-dir .zig-cache --global-cache-dir .zig-global "
             "-femit-bin=main"),
    artifacts=("main",), execute=("./main",))


@lru_cache(maxsize=1)
def version() -> str | None:
    return tool_version([ZIG, "version"])


def run_source(source: str, *, stdin: bytes | str = b"", limits: Limits, unsafe: bool = False) -> Outcome:
    return build_and_run("zig", version(), RECIPE, source, stdin=stdin, limits=limits, unsafe=unsafe)


LANGUAGE = Language(
    tool="zig", name="zig", fence_tags=("zig",), source_name="main.zig",
    version=version, run=run_source, compiled=True, install="pip: ziglang==0.13.0 -> /opt/toolchains/zig",
)
