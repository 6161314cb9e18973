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

from crucible.tasks.translate import (FAIL_MARK, Problem, Translation, Untranslatable, check_int_range,
                                      comment_block, float_text, safe_name, translate_doc)

RESERVED = {"and", "as", "assert", "asr", "begin", "class", "constraint", "do", "done", "downto", "else", "end",
            "exception", "external", "false", "for", "fun", "function", "functor", "if", "in", "include",
            "inherit", "initializer", "land", "lazy", "let", "lor", "lsl", "lsr", "lxor", "match", "method", "mod",
            "module", "mutable", "new", "nonrec", "object", "of", "open", "or", "private", "rec", "sig", "struct",
            "then", "to", "true", "try", "type", "val", "virtual", "when", "while", "with", "method"}
ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b"}


def type_name(t) -> str:
    simple = {"int": "int", "float": "float", "bool": "bool", "str": "string"}
    if t.kind in simple:
        return simple[t.kind]
    if t.kind == "list":
        return f"{_atom(type_name(t.args[0]))} list"
    if t.kind == "tuple":
        return "(" + " * ".join(_atom(type_name(a)) for a in t.args) + ")"
    if t.kind == "optional":
        return f"{_atom(type_name(t.args[0]))} option"
    if t.kind == "dict":
        raise Untranslatable("a dict (no structural-equality map in OCaml's standard library)")
    raise Untranslatable(f"type {t}")


def _atom(text: str) -> str:
    return text if " " not in text or text.startswith("(") and text.endswith(")") else f"({text})"


def string(value: str) -> str:
    out = []
    for ch in value:
        if ch in ESCAPES:
            out.append(ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):03d}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise Untranslatable("a lone surrogate in a string")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def literal(value, t) -> str:
    if t.kind == "optional":
        return "None" if value is None else f"(Some {literal(value, t.args[0])})"
    if value is None:
        raise Untranslatable("None where the type is not Optional")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and t.kind != "float":
        check_int_range(value)
        if not -(2 ** 62) <= value < 2 ** 62:
            raise Untranslatable(f"integer {value} does not fit OCaml's 63-bit int")
        return f"({value})" if value < 0 else str(value)
    if isinstance(value, (int, float)):
        text = float_text(value)
        return f"({text})" if text.startswith("-") else text
    if isinstance(value, str):
        return string(value)
    if isinstance(value, (list, tuple)) and t.kind == "list":
        return "[" + "; ".join(literal(v, t.args[0]) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(literal(v, et) for v, et in zip(value, t.args)) + ")"
    raise Untranslatable(f"value {value!r}")


def translate(p: Problem) -> Translation:
    name = safe_name(p.name, RESERVED)
    params = " ".join(f"({safe_name(n, RESERVED)} : {type_name(t)})" for n, t in p.params) or "()"
    header = ""
    doc = translate_doc(p, literal, name, call_syntax=lambda f, args: " ".join([f, *args] if args else [f, "()"]))
    doc = doc.replace("*)", "* )")
    if doc.count('"') % 2:  # OCaml lexes string literals inside comments: an odd quote never closes
        doc = doc.replace('"', "''")
    prompt = header + "(*" + comment_block(doc, "", "").rstrip("\n").replace("\n", "\n  ") + " *)\n"
    prompt += f"let rec {name} {params} : {type_name(p.returns)} =\n"
    lines = ["", "let () =",
             f'  let fail i = prerr_endline ("{FAIL_MARK} " ^ string_of_int i); exit 1 in']
    for i, c in enumerate(p.cases):
        args = " ".join(literal(v, t) for v, (_, t) in zip(c.args, p.params)) or "()"
        if c.tolerance is not None:
            lines.append(f"  if not (Float.abs ({name} {args} -. {literal(c.expected, p.returns)}) < "
                         f"{float_text(c.tolerance)}) then fail {i};")
        else:
            lines.append(f"  if not ({name} {args} = {literal(c.expected, p.returns)}) then fail {i};")
    lines.append("  ()")
    return Translation(p.task_id, "ocaml", header, prompt, "\n".join(lines) + "\n", stop=["\nlet ", "\n(*", "\n;;"],
                       closer="\n", defines=rf"^let\s+(rec\s+)?{name}\b", name=name, braces=False)
