"""OCaml: Debian's ocamlopt (native code), with str, unix and, when installed, zarith linked.

Zarith (`Z.` big integers) is what OCaml programmers reach for; linking it lets a model that knows
it use it. Without the package the program must do without, as in C.
"""

from __future__ import annotations

import os
from functools import lru_cache

from crucible.languages import Language
from crucible.languages.build import Recipe, build_and_run, tool_version
from crucible.sandbox import Limits, Outcome

OCAMLOPT = "/usr/bin/ocamlopt"
ZARITH = "/usr/lib/ocaml/zarith/zarith.cmxa"


def recipe() -> Recipe:
    libs = ("str.cmxa", "unix.cmxa") + (("-I", "+zarith", "zarith.cmxa") if os.path.exists(ZARITH) else ())
    return Recipe(source_name="main.ml", compile=(OCAMLOPT, "-w", "-a", *libs, "main.ml", "-o", "main"),
                  artifacts=("main",), execute=("./main",))


@lru_cache(maxsize=1)
def version() -> str | None:
    return tool_version([OCAMLOPT, "-version"])


def run_source(source: str, *, stdin: bytes | str = b"", limits: Limits, unsafe: bool = False) -> Outcome:
    return build_and_run("ocaml", version(), recipe(), source, stdin=stdin, limits=limits, unsafe=unsafe)


LANGUAGE = Language(
    tool="ocamlopt", name="ocaml", display="OCaml", fence_tags=("ocaml", "ml"), source_name="main.ml", aliases=("ml",),
    version=version, run=run_source, compiled=True,
    install="apt: ocaml-nox libzarith-ocaml-dev", comment="(*",
)
