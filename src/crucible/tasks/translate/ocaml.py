"""HumanEval -> OCaml: `let rec name (a : int list) (b : float) : bool =` and a `let () =` checking each case.

int -> int, float -> float, str -> string, list -> T list, tuple -> (A * B), Optional -> T option;
OCaml's structural `=` is the deep equality. Dicts are refused (no structural-equality map in the
standard library; an association list would make the order matter). Negative numbers are
parenthesised (`f (-5)` is an application, `f -5` a subtraction); strings use OCaml's escapes with
decimal `\\DDD` for control characters. `let rec` always: a recursive body must not fail for want
of `rec` (the unused-rec warning is off). The docstring becomes a (* *) comment; OCaml lexes string
literals inside comments, so an unbalanced double quote in it is replaced.
"""

from __future__ import annotations

from crucible.tasks.translate.problem import Problem
from crucible.tasks.translate.program import Translation
from crucible.tasks.translate.render import (FAIL_MARK, Literals, checks, comment_block, float_text, quote, render,
                                             signature, spell, translate_doc)
from crucible.tasks.translate.types import Untranslatable

RESERVED = {"and", "as", "assert", "asr", "begin", "class", "constraint", "do", "done", "downto", "else", "end",
            "exception", "external", "false", "for", "fun", "function", "functor", "if", "in", "include",
            "inherit", "initializer", "land", "lazy", "let", "lor", "lsl", "lsr", "lxor", "match", "method", "mod",
            "module", "mutable", "new", "nonrec", "object", "of", "open", "or", "private", "rec", "sig", "struct",
            "then", "to", "true", "try", "type", "val", "virtual", "when", "while", "with", "method"}
ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b"}
NAMES = {"int": "int", "float": "float", "bool": "bool", "str": "string"}
FORMS = {"list": lambda a: f"{_atom(a[0])} list", "tuple": lambda a: "(" + " * ".join(map(_atom, a)) + ")",
         "optional": lambda a: f"{_atom(a[0])} option"}


def type_name(t) -> str:
    if t.kind == "dict":
        raise Untranslatable("a dict (no structural-equality map in OCaml's standard library)")
    return spell(t, NAMES, FORMS, type_name)


def _atom(text: str) -> str:
    return text if " " not in text or text.startswith("(") and text.endswith(")") else f"({text})"


def string(value: str) -> str:
    return quote(value, ESCAPES, control="\\{:03d}")


def _negative(text: str) -> str:
    return f"({text})" if text.startswith("-") else text  # `f (-5)` applies f; `f -5` subtracts


def _integer(value: int) -> str:
    if not -(2 ** 62) <= value < 2 ** 62:
        raise Untranslatable(f"integer {value} does not fit OCaml's 63-bit int")
    return _negative(str(value))


LITERALS = Literals(
    integer=_integer, floating=_negative, string=string,
    sequence=lambda items, t: "[" + "; ".join(items) + "]",
    tuple=lambda items, t: "(" + ", ".join(items) + ")",
    optional=lambda inner, t: "None" if inner is None else f"(Some {inner})")


def literal(value, t) -> str:
    return render(value, t, LITERALS)


def translate(p: Problem) -> Translation:
    name, params = signature(p, RESERVED, lambda n, t: f"({n} : {type_name(t)})", sep=" ")
    header = ""
    doc = translate_doc(p, literal, name, call_syntax=lambda f, args: " ".join([f, *args] if args else [f, "()"]))
    doc = doc.replace("*)", "* )")
    if doc.count('"') % 2:  # OCaml lexes string literals inside comments: an odd quote never closes
        doc = doc.replace('"', "''")
    prompt = header + "(*" + comment_block(doc, "", "").rstrip("\n").replace("\n", "\n  ") + " *)\n"
    prompt += f"let rec {name} {params or '()'} : {type_name(p.returns)} =\n"
    lines = ["", "let () =",
             f'  let fail i = prerr_endline ("{FAIL_MARK} " ^ string_of_int i); exit 1 in']
    for i, args, expected, tolerance in checks(p, literal, sep=" "):
        args = args or "()"
        if tolerance is not None:
            lines.append(f"  if not (Float.abs ({name} {args} -. {expected}) < {float_text(tolerance)}) then fail {i};")
        else:
            lines.append(f"  if not ({name} {args} = {expected}) then fail {i};")
    lines.append("  ()")
    return Translation(p.task_id, "ocaml", header, prompt, "\n".join(lines) + "\n", stop=["\nlet ", "\n(*", "\n;;"],
                       closer="\n", defines=rf"^let\s+(rec\s+)?{name}\b", name=name, braces=False)
