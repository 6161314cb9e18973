"""What translators share: type spelling, literal rendering (`Literals` + `render`), string escapes,
signatures, test cases, docstring examples, identifiers. A translator is mostly these, configured."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Callable

from crucible.tasks.translate.problem import Problem, literal
from crucible.tasks.translate.types import T, Untranslatable


FAIL_MARK = "CRUCIBLE-TEST-FAILED"   # printed by a translated test before it exits with status 1


def check_int_range(value) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and not -(2 ** 63) <= value < 2 ** 63:
        raise Untranslatable(f"integer {value} does not fit in 64 bits")


def float_text(value: float) -> str:
    """A float literal every target parses to the same double (repr round-trips; always has . or e)."""
    text = repr(float(value))
    return text if any(c in text for c in ".e") else text + ".0"


def spell(t: T, names: dict[str, str], forms: dict[str, Callable[[list[str]], str]], part) -> str:
    """The target's name for type `t`: `names` spells the scalar kinds, `forms[kind]` builds a compound
    kind from the names of its parts, each spelled by `part` (the target's own type_name, so that its
    refusals apply at every depth). A kind with neither is Untranslatable."""
    if t.kind in names:
        return names[t.kind]
    if t.kind in forms:
        return forms[t.kind]([part(a) for a in t.args])
    raise Untranslatable(f"type {t}")


def refuse_surrogates(value: str) -> str:
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise Untranslatable("a lone surrogate in a string")
    return value


def quote(value: str, escapes: dict[str, str], control: str = "\\{:03o}", quote: str = '"') -> str:
    """A string literal: each character in `escapes` is replaced by its escape, other control
    characters (below U+0020, and DEL) are written with the `control` format (given the code point),
    and a lone surrogate, which no target's source text can hold, is refused."""
    out = []
    for ch in refuse_surrogates(value):
        if ch in escapes:
            out.append(escapes[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(control.format(ord(ch)))
        else:
            out.append(ch)
    return quote + "".join(out) + quote


@dataclass(frozen=True)
class Literals:
    """How one target writes values. Every hook gets parts already rendered; the type `t` is the
    value's own, for hooks that spell it. A hook left None means the target has no such form."""
    integer: Callable[[int], str]                                 # an int already known to fit 64 bits
    string: Callable[[str], str]                                  # a str value
    sequence: Callable[[list[str], T], str]                       # a list (or a tuple typed as a list)
    tuple: Callable[[list[str], T], str] | None = None            # None: tuples are written as sequences
    mapping: Callable[[list[tuple[str, str]], T], str] | None = None  # (key, value) pairs
    optional: Callable[[str | None, T], str] | None = None        # None: an Optional is its inner type
    floating: Callable[[str], str] = str                          # gets float_text(value)
    none: str | None = None                                       # what None is whatever the type (JS)
    untyped: Callable[[object], T] | None = None                  # the type to write a value of type Any as
    no_none: str = "None where the type is not Optional"          # why None is refused
    no_keys: str | None = None                                    # why a dict with non-str keys is refused


def render(value, t: T, lang: Literals) -> str:
    """`value` (a Python literal of type `t`) in the target's syntax, or Untranslatable."""
    if value is None and lang.none is not None:
        return lang.none
    if t.kind == "any" and lang.untyped is not None:
        t = lang.untyped(value)
    if t.kind == "optional":
        if lang.optional is None:
            return render(value, t.args[0], lang)
        return lang.optional(None if value is None else render(value, t.args[0], lang), t)
    if value is None:
        raise Untranslatable(lang.no_none)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and t.kind != "float":
        check_int_range(value)
        return lang.integer(value)
    if isinstance(value, (int, float)):
        return lang.floating(float_text(value))
    if isinstance(value, str):
        return lang.string(value)
    if isinstance(value, (list, tuple)) and (t.kind == "list" or lang.tuple is None):
        return lang.sequence([render(v, t.args[0], lang) for v in value], t)
    if isinstance(value, tuple):
        return lang.tuple([render(v, et, lang) for v, et in zip(value, t.args)], t)
    if isinstance(value, dict) and lang.mapping is not None:
        if lang.no_keys is not None and any(not isinstance(k, str) for k in value):
            raise Untranslatable(lang.no_keys)
        return lang.mapping([(render(k, t.args[0], lang), render(v, t.args[1], lang)) for k, v in value.items()], t)
    raise Untranslatable(f"value {value!r}")


def signature(p: Problem, reserved: set[str], param=lambda name, t: name, sep: str = ", ") -> tuple[str, str]:
    """The function's name and its parameter list (`param(name, type)` writes one), clear of `reserved`."""
    params = sep.join(param(safe_name(n, reserved), t) for n, t in p.params)
    return safe_name(p.name, reserved), params


def checks(p: Problem, literal, sep: str = ", "):
    """Each test case as (index, its arguments and expected value rendered by `literal`, tolerance)."""
    for i, c in enumerate(p.cases):
        args = sep.join(literal(v, t) for v, (_, t) in zip(c.args, p.params))
        yield i, args, literal(c.expected, p.returns), c.tolerance


def translate_doc(p: Problem, render, name: str, call_syntax=lambda f, args: f"{f}({', '.join(args)})") -> str:
    """The docstring with its `>>> f(args)` examples and their results in the target's syntax (each
    example that does not translate stays as Python). `render(value, type)` is the target's literal,
    `call_syntax(name, rendered_args)` its call syntax."""
    lines = p.doc.splitlines()
    out, expect_result = [], False
    for line in lines:
        stripped = line.strip()
        indent = line[:len(line) - len(line.lstrip())]
        if stripped.startswith(">>>"):
            expect_result = False
            try:
                call = ast.parse(stripped[3:].strip(), mode="eval").body
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == p.name
                        and len(call.args) == len(p.params) and not call.keywords):
                    raise Untranslatable("not a call of the function")
                args = [render(literal(a), t) for a, (_, t) in zip(call.args, p.params)]
                out.append(f"{indent}>>> {call_syntax(name, args)}")
                expect_result = True
                continue
            except (Untranslatable, SyntaxError, ValueError, TypeError, ZeroDivisionError):
                pass
        elif expect_result and stripped:
            expect_result = False
            try:
                out.append(indent + render(literal(ast.parse(stripped, mode="eval").body), p.returns))
                continue
            except (Untranslatable, SyntaxError, ValueError, TypeError, ZeroDivisionError):
                pass
        out.append(line)
    return "\n".join(out)


def comment_block(doc: str, prefix: str, indent: str = "") -> str:
    return "".join(f"{indent}{prefix} {line}".rstrip() + "\n" for line in doc.splitlines())


IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def safe_name(name: str, reserved: set[str]) -> str:
    if not IDENT.match(name):
        raise Untranslatable(f"identifier {name!r}")
    return name + "_" if name in reserved else name
