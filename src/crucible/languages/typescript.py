"""TypeScript: npm's `typescript` 7 (the native compiler) under /opt/toolchains/typescript, run on node.

A program that does not type-check is a compile error (as in MultiPL-E). Flags: `--strict false`
(TypeScript 7 made strict the default; one-shot programs are judged as classic tsc would),
`--skipLibCheck` (the user's code is checked, the bundled .d.ts files are trusted: 1.3 s -> 0.15 s
per build), `@types/node` for console/process/require.
"""

from __future__ import annotations

import glob
import json
import os
from functools import lru_cache

from crucible.languages import Language
from crucible.languages.build import Recipe, build_and_run
from crucible.languages.javascript import NODE, NODE_FLAGS
from crucible.sandbox import Limits, Outcome

PREFIX = os.environ.get("CRUCIBLE_TS_HOME", "/opt/toolchains/typescript")
PACKAGE = f"{PREFIX}/lib/node_modules/typescript"
TYPES = f"{PREFIX}/lib/node_modules/@types"


def compiler() -> tuple[str, ...]:
    native = sorted(glob.glob(f"{PACKAGE}/node_modules/@typescript/typescript-linux-*/lib/tsc"))
    return (native[0],) if native else (NODE, f"{PACKAGE}/bin/tsc")


def recipe() -> Recipe:
    return Recipe(
        source_name="main.ts",
        compile=(*compiler(), "--strict", "false", "--target", "es2022", "--module", "commonjs", "--skipLibCheck",
                 "--types", "node", "--typeRoots", TYPES, "--pretty", "false", "--outDir", "out", "main.ts"),
        artifacts=("out/main.js",), execute=(NODE, *NODE_FLAGS, "out/main.js"), own_heap_cap=True, min_procs=64,
        run_env={"UV_THREADPOOL_SIZE": "2"})


@lru_cache(maxsize=1)
def version() -> str | None:
    try:
        with open(f"{PACKAGE}/package.json") as f:
            return json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        return None


def run_source(source: str, *, stdin: bytes | str = b"", limits: Limits, unsafe: bool = False) -> Outcome:
    return build_and_run("typescript", version(), recipe(), source, stdin=stdin, limits=limits, unsafe=unsafe)


LANGUAGE = Language(
    tool="tsc", name="typescript", display="TypeScript", fence_tags=("typescript", "ts", "tsx"), source_name="main.ts",
    aliases=("ts",), version=version,
    run=run_source, compiled=True, install="npm: typescript@7.0.2 @types/node@20 -> /opt/toolchains/typescript",
)
