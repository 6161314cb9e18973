"""HumanEval -> C++17: a free function after `#include <bits/stdc++.h>`, and a main() checking each case.

int -> long, float -> double, str -> std::string, list -> std::vector<T>, tuple -> std::tuple<...>,
dict -> std::map<K, V>, Optional -> std::optional<T>; all compare with ==. Strings use octal escapes
for control characters (hex escapes in C++ swallow any hex digits that follow them).
"""

from __future__ import annotations

from crucible.tasks.translate import (FAIL_MARK, Problem, Translation, Untranslatable, check_int_range,
                                      comment_block, float_text, translate_doc, safe_name)

RESERVED = {"alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break", "case", "catch",
            "char", "class", "compl", "const", "constexpr", "const_cast", "continue", "decltype", "default",
            "delete", "do", "double", "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false",
            "float", "for", "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace", "new",
            "noexcept", "not", "not_eq", "nullptr", "operator", "or", "or_eq", "private", "protected", "public",
            "register", "reinterpret_cast", "return", "short", "signed", "sizeof", "static", "static_assert",
            "static_cast", "struct", "switch", "template", "this", "thread_local", "throw", "true", "try",
            "typedef", "typeid", "typename", "union", "unsigned", "using", "virtual", "void", "volatile", "wchar_t",
            "while", "xor", "xor_eq", "main", "std"}
ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "?": "\\?"}


def type_name(t) -> str:
    simple = {"int": "long", "float": "double", "bool": "bool", "str": "std::string"}
    if t.kind in simple:
        return simple[t.kind]
    if t.kind == "list":
        return f"std::vector<{type_name(t.args[0])}>"
    if t.kind == "tuple":
        return "std::tuple<" + ", ".join(type_name(a) for a in t.args) + ">"
    if t.kind == "dict":
        return f"std::map<{type_name(t.args[0])}, {type_name(t.args[1])}>"
    if t.kind == "optional":
        return f"std::optional<{type_name(t.args[0])}>"
    raise Untranslatable(f"type {t}")


def string(value: str) -> str:
    out = []
    for ch in value:
        if ch in ESCAPES:
            out.append(ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):03o}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise Untranslatable("a lone surrogate in a string")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def literal(value, t) -> str:
    if t.kind == "optional":
        if value is None:
            return f"{type_name(t)}()"
        return f"{type_name(t)}({literal(value, t.args[0])})"
    if value is None:
        raise Untranslatable("None where the type is not Optional")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and t.kind != "float":
        check_int_range(value)
        return f"{value}L" if value != -(2 ** 63) else "LONG_MIN"
    if isinstance(value, (int, float)):
        return float_text(value)
    if isinstance(value, str):
        return f"std::string({string(value)})"
    if isinstance(value, (list, tuple)) and t.kind == "list":
        return type_name(t) + "{" + ", ".join(literal(v, t.args[0]) for v in value) + "}"
    if isinstance(value, tuple):
        return type_name(t) + "{" + ", ".join(literal(v, et) for v, et in zip(value, t.args)) + "}"
    if isinstance(value, dict):
        return type_name(t) + "{" + ", ".join(f"{{{literal(k, t.args[0])}, {literal(v, t.args[1])}}}"
                                              for k, v in value.items()) + "}"
    raise Untranslatable(f"value {value!r}")


def translate(p: Problem) -> Translation:
    sig = ", ".join(f"{type_name(t)} {safe_name(n, RESERVED)}" for n, t in p.params)
    name = safe_name(p.name, RESERVED)
    ret = type_name(p.returns)
    header = "#include <bits/stdc++.h>\n\n"
    prompt = header + comment_block(translate_doc(p, literal, name), "//") + f"{ret} {name}({sig}) {{\n"
    lines = ["", "static void crucible_fail(int i) {", f'    std::cerr << "{FAIL_MARK} " << i << std::endl;',
             "    std::exit(1);", "}", "", "int main() {"]
    for i, c in enumerate(p.cases):
        args = ", ".join(literal(v, t) for v, (_, t) in zip(c.args, p.params))
        if c.tolerance is not None:
            lines.append(f"    if (!(std::abs({name}({args}) - ({literal(c.expected, p.returns)})) < "
                         f"{float_text(c.tolerance)})) crucible_fail({i});")
        else:
            lines.append(f"    if (!({name}({args}) == {ret}({literal(c.expected, p.returns)}))) crucible_fail({i});")
    lines.append("}")
    return Translation(p.task_id, "cpp", header, prompt, "\n".join(lines) + "\n", stop=["\n}"], closer="\n}\n",
                       defines=rf"^[\w:<>,\s\*&]*\b{name}\s*\([^;{{]*\)\s*\{{", name=name)
