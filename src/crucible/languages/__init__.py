"""One small module per language: its toolchain, how to build and run a program in the sandbox.

Each module defines `LANGUAGE`, a `Language` value. `get(name)` looks one up (aliases included);
`run_program(lang, source, ...)` builds (compilers run inside the sandbox too, see `build.py`) and runs
a program and returns a sandbox `Outcome` (status `compile_error` when the build fails).

Toolchains live where the sandbox can see them: Debian packages under /usr, npm's TypeScript and
PyPI's zig under /opt/toolchains (`make toolchains`). Hack is not here: HHVM is in none of the
registries this project can reach (Debian 12, PyPI, npm), see `UNAVAILABLE`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

from crucible.sandbox import Limits, Outcome

# The language field of a task answered in words, not code (answer-checked tasks, final mode): it names
# no Language; nothing is extracted from such a reply, built or run (`get` does not know it).
PROSE = "text"

MODULES = ["python", "javascript", "typescript", "go", "rust", "kotlin", "ocaml", "zig", "c", "cpp", "java"]

# Languages of the original experiment that cannot be installed here, and why.
UNAVAILABLE = {
    "hack": "HHVM (the Hack runtime) is not packaged in Debian 12, PyPI or npm, the only registries "
            "this project can reach; its own apt repository and binaries cannot be downloaded here",
}


@dataclass(frozen=True)
class Language:
    name: str
    fence_tags: tuple[str, ...]                 # ```tag names that mean this language
    source_name: str                            # file name the program is written to
    aliases: tuple[str, ...] = ()
    version: Callable[[], str | None] = field(default=lambda: None, compare=False)  # None: not installed
    run: Callable[..., Outcome] = field(default=None, compare=False)  # (source, stdin, limits, unsafe)
    compiled: bool = False
    install: str = ""                           # where `make toolchains` gets it from
    comment: str = "//"                         # line-comment prefix (prompts, translated tests)
    display: str = ""                           # name for tables ("C++")
    tool: str = ""                              # the compiler/interpreter, for prompts ("rustc 1.63.0")

    @property
    def title(self) -> str:
        return self.display or self.name.capitalize()

    def ready(self) -> bool:
        try:
            return self.version() is not None
        except OSError:
            return False


def all_languages() -> list[Language]:
    return [importlib.import_module(f"crucible.languages.{m}").LANGUAGE for m in MODULES]


def get(name: str) -> Language:
    key = name.lower().strip()
    for lang in all_languages():
        if key == lang.name or key in lang.aliases:
            return lang
    if key in UNAVAILABLE:
        raise KeyError(f"{name} is not supported here: {UNAVAILABLE[key]}")
    raise KeyError(f"unknown language {name!r}; known: {', '.join(l.name for l in all_languages())}")


def run_program(lang: str | Language, source: str, *, stdin: bytes | str = b"", limits: Limits | None = None,
                unsafe: bool = False, python_env=None) -> Outcome:
    """`python_env` (a `crucible.sandbox.pyenv.PythonEnv`) applies to Python programs only."""
    language = get(lang) if isinstance(lang, str) else lang
    extra = {"python_env": python_env} if python_env is not None and language.name == "python" else {}
    return language.run(source, stdin=stdin, limits=limits or Limits(), unsafe=unsafe, **extra)

