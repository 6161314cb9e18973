"""Translate HumanEval problems (signature + docstring, and their `assert candidate(...) == ...` tests)
into other languages: one shared walker over Python's `ast`, one small translator per target language.

The idea is MultiPL-E's (Cassano et al. 2022); the code is written for this project. What the walker
does, for every target alike:

1. Parse the prompt: the entry-point function's parameters, their annotations, the docstring. A prompt
   that defines other functions or classes is not translated (the helpers would need translating too).
2. Parse `check(candidate)`: every statement must be an assertion comparing one call of `candidate` on
   literal arguments with a literal (`==`, `is`, bare truthiness, `not`, or `abs(candidate(...) - x) <
   tol` which keeps its tolerance). Literals are evaluated from the AST (constant arithmetic such as
   `2.0/3.0` included), never by running the test.
3. Types: from the annotations where present, else inferred by joining the types of all the literal
   values the tests pass and expect (int joins float to float, None makes an Optional, an empty list
   takes its element type from the others). A type a target cannot express (mixed unions, Any, a
   heterogeneous tuple in Go) makes that problem untranslatable *for that target*, with the reason.
4. The translator renders the prompt (doc comment + signature, open for the body), the literals
   (typed, escaped for that language's string syntax), and a test main that compares with the
   language's deep equality and prints which test failed. Docstring examples (`>>> f([1, 2])` and
   the result line after it) are rewritten with the same literal renderer; the prose stays as is.

A translator is mostly declarative: its type names (`spell` with a table and compound forms), its
value syntax (a `Literals` of small hooks for the shared `render` walker) and its string escapes (the
shared `quote` with its escape table and control-character format); what is left is its test main.

Modules: `types` (T, inference, Untranslatable), `problem` (the walker: steps 1-3), `render` (what
translators share: step 4's pieces, FAIL_MARK), `program` (Translation: a completion -> the test
program), one module per target; this package's `translate(problem, language)` ties them together.

Not covered: prose that names Python values ("return None") is not reworded; tests with loops,
random inputs or helper code (e.g. HumanEval/32, /38, /50, /53) are reported as untranslatable.
"""

from __future__ import annotations

import importlib

from crucible.tasks.translate.problem import parse_problem
from crucible.tasks.translate.program import Translation

TARGETS = ["javascript", "typescript", "go", "rust", "java", "cpp", "ocaml"]


def translator(language: str):
    from crucible.languages import get

    return importlib.import_module(f"crucible.tasks.translate.{get(language).name}")


def translate(problem: dict, language: str) -> Translation:
    """Translate one HumanEval problem to `language`, or raise Untranslatable with the reason."""
    module = translator(language)
    parsed = parse_problem(problem, dynamic=getattr(module, "DYNAMIC", False))
    return module.translate(parsed)
