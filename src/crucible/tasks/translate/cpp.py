"""HumanEval -> C++17: a free function after `#include <bits/stdc++.h>`, and a main() checking each case.

int -> long, float -> double, str -> std::string, list -> std::vector<T>, tuple -> std::tuple<...>,
dict -> std::map<K, V>, Optional -> std::optional<T>; all compare with ==. Strings use octal escapes
for control characters (hex escapes in C++ swallow any hex digits that follow them).
"""

from __future__ import annotations

from crucible.tasks.translate.problem import Problem
from crucible.tasks.translate.program import Translation
from crucible.tasks.translate.render import (FAIL_MARK, Literals, checks, comment_block, float_text, quote, render,
                                             signature, spell, translate_doc)

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
NAMES = {"int": "long", "float": "double", "bool": "bool", "str": "std::string"}
FORMS = {"list": lambda a: f"std::vector<{a[0]}>", "tuple": lambda a: "std::tuple<" + ", ".join(a) + ">",
         "dict": lambda a: f"std::map<{a[0]}, {a[1]}>", "optional": lambda a: f"std::optional<{a[0]}>"}


def type_name(t) -> str:
    return spell(t, NAMES, FORMS, type_name)


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
    name, sig = signature(p, RESERVED, lambda n, t: f"{type_name(t)} {n}")
    ret = type_name(p.returns)
    header = "#include <bits/stdc++.h>\n\n"
    prompt = header + comment_block(translate_doc(p, literal, name), "//") + f"{ret} {name}({sig}) {{\n"
    lines = ["", "static void crucible_fail(int i) {", f'    std::cerr << "{FAIL_MARK} " << i << std::endl;',
             "    std::exit(1);", "}", "", "int main() {"]
    for i, args, expected, tolerance in checks(p, literal):
        if tolerance is not None:
            lines.append(f"    if (!(std::abs({name}({args}) - ({expected})) < {float_text(tolerance)})) "
                         f"crucible_fail({i});")
        else:
            lines.append(f"    if (!({name}({args}) == {ret}({expected}))) crucible_fail({i});")
    lines.append("}")
    return Translation(p.task_id, "cpp", header, prompt, "\n".join(lines) + "\n", stop=["\n}"], closer="\n}\n",
                       defines=rf"^[\w:<>,\s\*&]*\b{name}\s*\([^;{{]*\)\s*\{{", name=name)
