"""HumanEval -> Rust: `fn name(args) -> ret {`, a main() that checks every case.

int -> i64, float -> f64, str -> String, list -> Vec<T>, tuple -> (A, B), dict -> HashMap<K, V>,
Optional -> Option<T>. Expected values are bound with their type (`let expected: Vec<i64> = ...`)
so an empty `vec![]` or `HashMap::new()` needs no inference. Strings use Rust's escapes
(`\\u{1b}`, not JSON's `\\u001b`, which rustc rejects).
"""

from __future__ import annotations

from crucible.tasks.translate import (FAIL_MARK, Problem, Translation, Untranslatable, check_int_range,
                                      comment_block, float_text, translate_doc, safe_name)

RESERVED = {"as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for", "if", "impl",
            "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self", "static",
            "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn",
            "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual",
            "yield", "try", "main"}
ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def type_name(t) -> str:
    simple = {"int": "i64", "float": "f64", "bool": "bool", "str": "String"}
    if t.kind in simple:
        return simple[t.kind]
    if t.kind == "list":
        return f"Vec<{type_name(t.args[0])}>"
    if t.kind == "tuple":
        return "(" + ", ".join(type_name(a) for a in t.args) + ("," if len(t.args) == 1 else "") + ")"
    if t.kind == "dict":
        if t.args[0].kind == "float":
            raise Untranslatable("a dict with float keys (f64 is not Hash in Rust)")
        return f"HashMap<{type_name(t.args[0])}, {type_name(t.args[1])}>"
    if t.kind == "optional":
        return f"Option<{type_name(t.args[0])}>"
    raise Untranslatable(f"type {t}")


def string(value: str) -> str:
    out = []
    for ch in value:
        if ch in ESCAPES:
            out.append(ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{{{ord(ch):x}}}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise Untranslatable("a lone surrogate in a string")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def literal(value, t) -> str:
    if t.kind == "optional":
        return "None" if value is None else f"Some({literal(value, t.args[0])})"
    if value is None:
        raise Untranslatable("None where the type is not Optional")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and t.kind != "float":
        check_int_range(value)
        return str(value)
    if isinstance(value, (int, float)):
        return float_text(value)
    if isinstance(value, str):
        return f"String::from({string(value)})"
    if isinstance(value, (list, tuple)) and t.kind == "list":
        if not value:
            return f"Vec::<{type_name(t.args[0])}>::new()"
        return "vec![" + ", ".join(literal(v, t.args[0]) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(literal(v, et) for v, et in zip(value, t.args)) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        if not value:
            return "HashMap::new()"
        return "HashMap::from([" + ", ".join(f"({literal(k, t.args[0])}, {literal(v, t.args[1])})"
                                             for k, v in value.items()) + "])"
    raise Untranslatable(f"value {value!r}")


def translate(p: Problem) -> Translation:
    sig = ", ".join(f"{safe_name(n, RESERVED)}: {type_name(t)}" for n, t in p.params)
    name = safe_name(p.name, RESERVED)
    ret = type_name(p.returns)
    header = "#![allow(unused_imports, dead_code)]\nuse std::collections::HashMap;\nuse std::collections::HashSet;\n\n"
    prompt = header + comment_block(translate_doc(p, literal, name), "///") + f"fn {name}({sig}) -> {ret} {{\n"
    lines = ["", "fn main() {"]
    for i, c in enumerate(p.cases):
        args = ", ".join(literal(v, t) for v, (_, t) in zip(c.args, p.params))
        fail = f'{{\n            eprintln!("{FAIL_MARK} {i}");\n            std::process::exit(1);\n        }}'
        lines.append("    {")
        lines.append(f"        let expected: {ret} = {literal(c.expected, p.returns)};")
        if c.tolerance is not None:
            lines.append(f"        if !(({name}({args}) - expected).abs() < {float_text(c.tolerance)}) {fail}")
        else:
            lines.append(f"        if {name}({args}) != expected {fail}")
        lines.append("    }")
    lines.append("}")
    return Translation(p.task_id, "rust", header, prompt, "\n".join(lines) + "\n", stop=["\n}"], closer="\n}\n",
                       defines=rf"^\s*(pub\s+)?fn\s+{name}\s*[(<]", name=name)
