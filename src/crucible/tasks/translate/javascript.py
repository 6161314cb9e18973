"""HumanEval -> JavaScript: `function name(args) {` with the docstring as // comments above it.

Values: numbers for int and float, arrays for lists and tuples, plain objects for dicts with string
keys (other keys would turn into strings in JS, so such problems are refused), `undefined` for None.
Equality: a small deep-equal where null and undefined are the same (a solution may return either).
"""

from __future__ import annotations

import json

from crucible.tasks.translate.problem import Problem
from crucible.tasks.translate.program import Translation
from crucible.tasks.translate.render import (FAIL_MARK, Literals, checks, comment_block, float_text, render,
                                             signature, translate_doc)
from crucible.tasks.translate.types import ANY, FLOAT, STR, T, Untranslatable, list_of

DYNAMIC = True  # values of mixed types are fine: the parameter or result is simply untyped
RESERVED = {"break", "case", "catch", "class", "const", "continue", "debugger", "default", "delete", "do", "else",
            "export", "extends", "finally", "for", "function", "if", "import", "in", "instanceof", "new", "return",
            "super", "switch", "this", "throw", "try", "typeof", "var", "void", "while", "with", "yield", "let",
            "static", "enum", "await", "implements", "package", "protected", "interface", "private", "public",
            "null", "true", "false", "arguments", "eval"}

EQUAL = """function __crucible_equal(a, b) {
  if (a === b) return true;
  if (a == null || b == null) return a == null && b == null;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => __crucible_equal(x, b[i]));
  }
  if (typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a), kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && __crucible_equal(a[k], b[k]));
  }
  return false;
}
"""


def string(value: str) -> str:
    # JSON string syntax is JavaScript string syntax (U+2028/9 are legal in JS strings since ES2019).
    return json.dumps(value, ensure_ascii=False)


def _integer(value: int) -> str:
    if abs(value) > 2 ** 53:
        raise Untranslatable(f"integer {value} is not exact as a JavaScript number")
    return str(value)


def _untyped(value) -> T:
    """An untyped value is written as it is, its parts untyped too."""
    if isinstance(value, (list, tuple)):
        return list_of(ANY)
    if isinstance(value, dict):
        return T("dict", (STR, ANY))
    return FLOAT if isinstance(value, float) else ANY


LITERALS = Literals(
    integer=_integer, string=string, none="undefined", untyped=_untyped,
    sequence=lambda items, t: "[" + ", ".join(items) + "]",
    tuple=lambda items, t: "[" + ", ".join(items) + "]",
    mapping=lambda pairs, t: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}",
    no_keys="dict with non-string keys (JavaScript object keys are strings)")


def literal(value, t) -> str:
    return render(value, t, LITERALS)


def check_types(t) -> None:
    if t.kind == "dict" and t.args[0].kind not in ("str", "unknown"):
        raise Untranslatable("dict with non-string keys (JavaScript object keys are strings)")
    for a in t.args:
        check_types(a)


def test_main(p: Problem, call_name: str, lit) -> str:
    lines = ["", EQUAL, "function __crucible_fail(i) {", f'  console.error("{FAIL_MARK} " + i);',
             "  process.exit(1);", "}", ""]
    for i, args, expected, tolerance in checks(p, lit):
        call = f"{call_name}({args})"
        if tolerance is not None:
            lines.append(f"if (!(Math.abs({call} - {expected}) < {float_text(tolerance)})) __crucible_fail({i});")
        else:
            lines.append(f"if (!__crucible_equal({call}, {expected})) __crucible_fail({i});")
    return "\n".join(lines) + "\n"


def translate(p: Problem) -> Translation:
    for _, t in p.params + [("", p.returns)]:
        check_types(t)
    name, params = signature(p, RESERVED)
    header = ""
    prompt = header + comment_block(translate_doc(p, literal, name), "//") + f"function {name}({params}) {{\n"
    return Translation(p.task_id, "javascript", header, prompt, test_main(p, name, literal), stop=["\n}"],
                       closer="\n}\n", defines=rf"^\s*(async\s+)?function\s+{name}\s*\(", name=name)
