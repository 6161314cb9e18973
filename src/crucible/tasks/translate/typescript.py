"""HumanEval -> TypeScript: the JavaScript translation with types in the signature.

int and float -> number, list -> T[], tuple -> [A, B], dict with string keys -> {[key: string]: V},
Optional -> T | undefined, Any -> any. Literals and the deep-equal are JavaScript's (see javascript.py).
"""

from __future__ import annotations

from crucible.tasks.translate.problem import Problem
from crucible.tasks.translate.program import Translation
from crucible.tasks.translate.render import comment_block, signature, spell, translate_doc
from crucible.tasks.translate.javascript import DYNAMIC, RESERVED, check_types, literal, test_main  # noqa: F401

RESERVED_TS = RESERVED | {"type", "declare", "namespace", "module", "any", "number", "string", "boolean"}
NAMES = {"int": "number", "float": "number", "bool": "boolean", "str": "string", "any": "any", "none": "undefined"}
FORMS = {"list": lambda a: f"({a[0]})[]" if "|" in a[0] else f"{a[0]}[]", "tuple": lambda a: "[" + ", ".join(a) + "]",
         "dict": lambda a: f"{{[key: string]: {a[1]}}}", "optional": lambda a: f"{a[0]} | undefined"}


def type_name(t) -> str:
    return spell(t, NAMES, FORMS, type_name)


def translate(p: Problem) -> Translation:
    for _, t in p.params + [("", p.returns)]:
        check_types(t)
    name, params = signature(p, RESERVED_TS, lambda n, t: f"{n}: {type_name(t)}")
    header = ""
    prompt = header + comment_block(translate_doc(p, literal, name), "//") + f"function {name}({params}): {type_name(p.returns)} {{\n"
    return Translation(p.task_id, "typescript", header, prompt, test_main(p, name, literal), stop=["\n}"],
                       closer="\n}\n", defines=rf"^\s*(export\s+)?function\s+{name}\s*[(<]", name=name)
