"""HumanEval -> TypeScript: the JavaScript translation with types in the signature.

int and float -> number, list -> T[], tuple -> [A, B], dict with string keys -> {[key: string]: V},
Optional -> T | undefined, Any -> any. Literals and the deep-equal are JavaScript's (see javascript.py).
"""

from __future__ import annotations

from crucible.tasks.translate import Problem, Translation, Untranslatable, comment_block, safe_name, translate_doc
from crucible.tasks.translate.javascript import DYNAMIC, RESERVED, check_types, literal, test_main  # noqa: F401

RESERVED_TS = RESERVED | {"type", "declare", "namespace", "module", "any", "number", "string", "boolean"}


def type_name(t) -> str:
    simple = {"int": "number", "float": "number", "bool": "boolean", "str": "string", "any": "any", "none": "undefined"}
    if t.kind in simple:
        return simple[t.kind]
    if t.kind == "list":
        inner = type_name(t.args[0])
        return f"({inner})[]" if "|" in inner else f"{inner}[]"
    if t.kind == "tuple":
        return "[" + ", ".join(type_name(a) for a in t.args) + "]"
    if t.kind == "dict":
        return f"{{[key: string]: {type_name(t.args[1])}}}"
    if t.kind == "optional":
        return f"{type_name(t.args[0])} | undefined"
    raise Untranslatable(f"type {t}")


def translate(p: Problem) -> Translation:
    for _, t in p.params + [("", p.returns)]:
        check_types(t)
    params = ", ".join(f"{safe_name(n, RESERVED_TS)}: {type_name(t)}" for n, t in p.params)
    name = safe_name(p.name, RESERVED_TS)
    header = ""
    prompt = header + comment_block(translate_doc(p, literal, name), "//") + f"function {name}({params}): {type_name(p.returns)} {{\n"
    return Translation(p.task_id, "typescript", header, prompt, test_main(p, name, literal), stop=["\n}"],
                       closer="\n}\n", defines=rf"^\s*(export\s+)?function\s+{name}\s*[(<]", name=name)
