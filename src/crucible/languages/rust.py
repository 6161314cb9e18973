"""Rust: Debian's rustc (edition 2021, -O, symbols stripped), one file, no crates.

Debian's rustc is used on purpose: a rustup toolchain lives under a home directory the sandbox
cannot see. No cargo: a one-shot program has no dependencies to fetch.
"""

from __future__ import annotations

from functools import lru_cache

from crucible.languages import Language
from crucible.languages.build import Recipe, build_and_run, tool_version
from crucible.sandbox import Limits, Outcome

RUSTC = "/usr/bin/rustc"
RECIPE = Recipe(source_name="main.rs",
                compile=(RUSTC, "-O", "--edition", "2021", "-C", "strip=symbols", "-o", "main", "main.rs"),
                artifacts=("main",), execute=("./main",))


@lru_cache(maxsize=1)
def version() -> str | None:
    return tool_version([RUSTC, "--version"])


def run_source(source: str, *, stdin: bytes | str = b"", limits: Limits, unsafe: bool = False) -> Outcome:
    return build_and_run("rust", version(), RECIPE, source, stdin=stdin, limits=limits, unsafe=unsafe)


LANGUAGE = Language(
    tool="rustc", name="rust", fence_tags=("rust", "rs"), source_name="main.rs", aliases=("rs",),
    version=version, run=run_source, compiled=True,
    install="apt: rustc",
)
