"""One small module per language: its toolchain, how to build and run a program in the sandbox.

Each module defines `LANGUAGE`, a `Language` value. `get(name)` looks one up (aliases included);
`run_program(lang, source, ...)` builds (compilers run inside the sandbox too) and runs a program and
returns a sandbox `Outcome` (status `compile_error` when the build fails).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

from crucible.sandbox import Limits, Outcome

MODULES = ["python"]


@dataclass(frozen=True)
class Language:
    name: str
    fence_tags: tuple[str, ...]                 # ```tag names that mean this language
    source_name: str                            # file name the program is written to
    stop_sequences: tuple[str, ...] = ()        # where a base model's completion of a function ends
    aliases: tuple[str, ...] = ()
    version: Callable[[], str | None] = field(default=lambda: None, compare=False)  # None: not installed
    run: Callable[..., Outcome] = field(default=None, compare=False)  # (source, stdin, limits, unsafe)


def all_languages() -> list[Language]:
    return [importlib.import_module(f"crucible.languages.{m}").LANGUAGE for m in MODULES]


def get(name: str) -> Language:
    key = name.lower()
    for lang in all_languages():
        if key == lang.name or key in lang.aliases:
            return lang
    raise KeyError(f"unknown language {name!r}; known: {', '.join(l.name for l in all_languages())}")


def run_program(lang: str | Language, source: str, *, stdin: bytes | str = b"", limits: Limits | None = None,
                unsafe: bool = False) -> Outcome:
    language = get(lang) if isinstance(lang, str) else lang
    return language.run(source, stdin=stdin, limits=limits or Limits(), unsafe=unsafe)
