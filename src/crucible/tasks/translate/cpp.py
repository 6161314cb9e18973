"""HumanEval -> C++17: a free function after `#include <bits/stdc++.h>`, and a main() checking each case.

int -> long, float -> double, str -> std::string, list -> std::vector<T>, tuple -> std::tuple<...>,
dict -> std::map<K, V>, Optional -> std::optional<T>; all compare with ==. Strings use octal escapes
for control characters (hex escapes in C++ swallow any hex digits that follow them).
"""

from __future__ import annotations

from crucible.tasks.translate import (FAIL_MARK, Literals, Problem, Translation, Untranslatable, case_args,
                                      comment_block, float_text, quote, render, safe_name, translate_doc)

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
    return quote(value, ESCAPES, control="\\{:03o}")


LITERALS = Literals(
    integer=lambda v: f"{v}L" if v != -(2 ** 63) else "LONG_MIN",
    string=lambda s: f"std::string({string(s)})",
    sequence=lambda items, t: type_name(t) + "{" + ", ".join(items) + "}",
    tuple=lambda items, t: type_name(t) + "{" + ", ".join(items) + "}",
    mapping=lambda pairs, t: type_name(t) + "{" + ", ".join(f"{{{k}, {v}}}" for k, v in pairs) + "}",
    optional=lambda inner, t: f"{type_name(t)}()" if inner is None else f"{type_name(t)}({inner})")


def literal(value, t) -> str:
    return render(value, t, LITERALS)


def translate(p: Problem) -> Translation:
    sig = ", ".join(f"{type_name(t)} {safe_name(n, RESERVED)}" for n, t in p.params)
    name = safe_name(p.name, RESERVED)
    ret = type_name(p.returns)
    header = "#include <bits/stdc++.h>\n\n"
    prompt = header + comment_block(translate_doc(p, literal, name), "//") + f"{ret} {name}({sig}) {{\n"
    lines = ["", "static void crucible_fail(int i) {", f'    std::cerr << "{FAIL_MARK} " << i << std::endl;',
             "    std::exit(1);", "}", "", "int main() {"]
    for i, c in enumerate(p.cases):
        args = case_args(p, c, literal)
        if c.tolerance is not None:
            lines.append(f"    if (!(std::abs({name}({args}) - ({literal(c.expected, p.returns)})) < "
                         f"{float_text(c.tolerance)})) crucible_fail({i});")
        else:
            lines.append(f"    if (!({name}({args}) == {ret}({literal(c.expected, p.returns)}))) crucible_fail({i});")
    lines.append("}")
    return Translation(p.task_id, "cpp", header, prompt, "\n".join(lines) + "\n", stop=["\n}"], closer="\n}\n",
                       defines=rf"^[\w:<>,\s\*&]*\b{name}\s*\([^;{{]*\)\s*\{{", name=name)
