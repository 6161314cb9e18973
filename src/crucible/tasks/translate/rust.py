"""HumanEval -> Rust: `fn name(args) -> ret {`, a main() that checks every case.

int -> i64, float -> f64, str -> String, list -> Vec<T>, tuple -> (A, B), dict -> HashMap<K, V>,
Optional -> Option<T>. Expected values are bound with their type (`let expected: Vec<i64> = ...`)
so an empty `vec![]` or `HashMap::new()` needs no inference. Strings use Rust's escapes
(`\\u{1b}`, not JSON's `\\u001b`, which rustc rejects).
"""

from __future__ import annotations

from crucible.tasks.translate.problem import Problem
from crucible.tasks.translate.program import Translation
from crucible.tasks.translate.render import (FAIL_MARK, Literals, checks, comment_block, float_text, quote, render,
                                             signature, spell, translate_doc)
from crucible.tasks.translate.types import Untranslatable

RESERVED = {"as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for", "if", "impl",
            "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self", "static",
            "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn",
            "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual",
            "yield", "try", "main"}
ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}
NAMES = {"int": "i64", "float": "f64", "bool": "bool", "str": "String"}
FORMS = {"list": lambda a: f"Vec<{a[0]}>", "tuple": lambda a: "(" + ", ".join(a) + ("," if len(a) == 1 else "") + ")",
         "dict": lambda a: f"HashMap<{a[0]}, {a[1]}>", "optional": lambda a: f"Option<{a[0]}>"}


def type_name(t) -> str:
    if t.kind == "dict" and t.args[0].kind == "float":
        raise Untranslatable("a dict with float keys (f64 is not Hash in Rust)")
    return spell(t, NAMES, FORMS, type_name)


def string(value: str) -> str:
    return quote(value, ESCAPES, control="\\u{{{:x}}}")


LITERALS = Literals(
    integer=str,
    string=lambda s: f"String::from({string(s)})",
    sequence=lambda items, t: "vec![" + ", ".join(items) + "]" if items else f"Vec::<{type_name(t.args[0])}>::new()",
    tuple=lambda items, t: "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")",
    mapping=lambda pairs, t: "HashMap::from([" + ", ".join(f"({k}, {v})" for k, v in pairs) + "])" if pairs
    else "HashMap::new()",
    optional=lambda inner, t: "None" if inner is None else f"Some({inner})")


def literal(value, t) -> str:
    return render(value, t, LITERALS)


def translate(p: Problem) -> Translation:
    name, sig = signature(p, RESERVED, lambda n, t: f"{n}: {type_name(t)}")
    ret = type_name(p.returns)
    header = "#![allow(unused_imports, dead_code)]\nuse std::collections::HashMap;\nuse std::collections::HashSet;\n\n"
    prompt = header + comment_block(translate_doc(p, literal, name), "///") + f"fn {name}({sig}) -> {ret} {{\n"
    lines = ["", "fn main() {"]
    for i, args, expected, tolerance in checks(p, literal):
        fail = f'{{\n            eprintln!("{FAIL_MARK} {i}");\n            std::process::exit(1);\n        }}'
        lines.append("    {")
        lines.append(f"        let expected: {ret} = {expected};")
        if tolerance is not None:
            lines.append(f"        if !(({name}({args}) - expected).abs() < {float_text(tolerance)}) {fail}")
        else:
            lines.append(f"        if {name}({args}) != expected {fail}")
        lines.append("    }")
    lines.append("}")
    return Translation(p.task_id, "rust", header, prompt, "\n".join(lines) + "\n", stop=["\n}"], closer="\n}\n",
                       defines=rf"^\s*(pub\s+)?fn\s+{name}\s*[(<]", name=name)
