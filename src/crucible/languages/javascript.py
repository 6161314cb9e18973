"""JavaScript: Debian's node (or whichever /usr/bin/node is installed), CommonJS, one file.

V8 reserves far more address space than it uses, so runs get no RLIMIT_AS; the heap is capped with
--max-old-space-size at half the caller's memory_mb instead (an over-allocation is reported as a
memory error by the sandbox's markers).
"""

from __future__ import annotations

from functools import lru_cache

from crucible.languages import Language
from crucible.languages.build import Recipe, build_and_run, tool_version
from crucible.sandbox import Limits, Outcome

NODE = "/usr/bin/node"
NODE_FLAGS = ("--max-old-space-size={heap_mb}", "--stack-size=7000")
RECIPE = Recipe(source_name="main.js", execute=(NODE, *NODE_FLAGS, "main.js"), own_heap_cap=True, min_procs=64,
                run_env={"UV_THREADPOOL_SIZE": "2"})


@lru_cache(maxsize=1)
def version() -> str | None:
    return tool_version([NODE, "--version"])


def run_source(source: str, *, stdin: bytes | str = b"", limits: Limits, unsafe: bool = False) -> Outcome:
    out = build_and_run("javascript", version(), RECIPE, source, stdin=stdin, limits=limits, unsafe=unsafe)
    return reclassify_syntax_error(out)


def reclassify_syntax_error(out: Outcome) -> Outcome:
    """main.js failing to parse is a compile error. Node reports it from its module loader (wrapSafe /
    compileFunction) before any of the program's own frames; a run-time eval() error has them."""
    if out.status == "runtime_error" and "SyntaxError:" in out.stderr and (
            "wrapSafe" in out.stderr or "internalCompileFunction" in out.stderr) and "at eval" not in out.stderr:
        line = next(ln for ln in out.stderr.splitlines() if "SyntaxError:" in ln)
        out.status, out.detail = "compile_error", line.strip()[:300]
    return out


LANGUAGE = Language(
    tool="node", name="javascript", display="JavaScript", fence_tags=("javascript", "js", "node", "jsx"), source_name="main.js",
    aliases=("js", "node"), version=version,
    run=run_source, install="apt: nodejs (any /usr/bin/node >= 18)",
)
