"""Go: Debian's golang-go, `go build` of one file outside any module (GO111MODULE=off, no proxy).

The compiler's build cache goes in the build's own work dir (fresh per build, so nothing is shared
between programs; relative to $PWD so --unsafe-no-sandbox builds do not share one either): Debian's
Go 1.19 ships the standard library precompiled, so a cold cache costs little. Runs get GOMAXPROCS=2.
"""

from __future__ import annotations

from functools import lru_cache

from crucible.languages import Language
from crucible.languages.build import COMPILE_LIMITS, Recipe, build_and_run, tool_version
from crucible.sandbox import Limits, Outcome

GO = "/usr/bin/go"
RECIPE = Recipe(
    source_name="main.go",
    compile=("/bin/sh", "-c", f'GOCACHE="$PWD/.gocache" GOPATH="$PWD/.gopath" exec {GO} build -o main main.go'),
    artifacts=("main",), execute=("./main",), min_procs=64,
    compile_env={"GO111MODULE": "off", "GOPROXY": "off",
                 "GOFLAGS": "-buildvcs=false", "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"},
    run_env={"GOMAXPROCS": "2"}, compile_limits=COMPILE_LIMITS,
)


@lru_cache(maxsize=1)
def version() -> str | None:
    return tool_version([GO, "version"], r"go(\d+\.\d+(?:\.\d+)?)")


def run_source(source: str, *, stdin: bytes | str = b"", limits: Limits, unsafe: bool = False) -> Outcome:
    return build_and_run("go", version(), RECIPE, source, stdin=stdin, limits=limits, unsafe=unsafe)


LANGUAGE = Language(
    tool="go", name="go", fence_tags=("go", "golang"), source_name="main.go", aliases=("golang",),
    version=version, run=run_source, compiled=True,
    install="apt: golang-go",
)
