"""HumanEval -> Java: a static method of `public class Problem`, with main() in the same class.

int -> long (Long inside collections), float -> double, str -> String, list -> ArrayList<T>,
homogeneous tuple -> ArrayList<T>, dict -> HashMap<K, V>, Optional -> Optional<T>. Equality is
`Objects.equals` on boxed values (collections compare element-wise). Strings use Java escapes with
octal for control characters: a `\\u000a` escape would be decoded before lexing and break the literal.
A body ends at the method's closing brace, indented (`\n    }`) or, for a dedented chat reply, flush.
"""

from __future__ import annotations

from crucible.tasks.translate.problem import Problem
from crucible.tasks.translate.program import Translation
from crucible.tasks.translate.render import (FAIL_MARK, Literals, checks, comment_block, float_text, quote, render,
                                             signature, spell, translate_doc)
from crucible.tasks.translate.types import Untranslatable

RESERVED = {"abstract", "assert", "boolean", "break", "byte", "case", "catch", "char", "class", "const", "continue",
            "default", "do", "double", "else", "enum", "extends", "final", "finally", "float", "for", "goto", "if",
            "implements", "import", "instanceof", "int", "interface", "long", "native", "new", "package", "private",
            "protected", "public", "return", "short", "static", "strictfp", "super", "switch", "synchronized",
            "this", "throw", "throws", "transient", "try", "void", "volatile", "while", "true", "false", "null",
            "var", "record", "yield", "main", "_"}
ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
NAMES = {"int": "long", "float": "double", "bool": "boolean", "str": "String"}
BOXED = {"int": "Long", "float": "Double", "bool": "Boolean", "str": "String"}  # inside collections
FORMS = {"list": lambda a: f"ArrayList<{a[0]}>", "tuple": lambda a: f"ArrayList<{a[0]}>",
         "dict": lambda a: f"HashMap<{a[0]}, {a[1]}>", "optional": lambda a: f"Optional<{a[0]}>"}


def type_name(t, boxed: bool = False) -> str:
    if t.kind == "tuple" and len(set(t.args)) != 1:
        raise Untranslatable("a tuple of mixed types (Java has no tuples)")
    return spell(t, BOXED if boxed else NAMES, FORMS, lambda a: type_name(a, True))


def string(value: str) -> str:
    return quote(value, ESCAPES, control="\\{:03o}")


def _optional(inner, t) -> str:
    boxed = type_name(t.args[0], True)
    return f"Optional.<{boxed}>empty()" if inner is None else f"Optional.<{boxed}>of({inner})"


def _mapping(pairs, t) -> str:
    k, v = (type_name(a, True) for a in t.args)
    return f"Problem.<{k}, {v}>crucibleMap(" + ", ".join(f"{kk}, {vv}" for kk, vv in pairs) + ")"


LITERALS = Literals(
    integer=lambda v: f"{v}L" if v != -(2 ** 63) else "Long.MIN_VALUE",
    string=string,
    sequence=lambda items, t: f"new {type_name(t)}(Arrays.asList(" + ", ".join(items) + "))" if items
    else f"new {type_name(t)}()",
    mapping=_mapping, optional=_optional)


def literal(value, t) -> str:
    return render(value, t, LITERALS)


def translate(p: Problem) -> Translation:
    name, sig = signature(p, RESERVED, lambda n, t: f"{type_name(t)} {n}")
    ret = type_name(p.returns)
    header = "import java.util.*;\nimport java.util.stream.*;\nimport java.math.*;\n\npublic class Problem {\n"
    prompt = header + comment_block(translate_doc(p, literal, name), "//", "    ") + f"    public static {ret} {name}({sig}) {{\n"
    lines = ["", "    @SuppressWarnings(\"unchecked\")",
             "    static <K, V> HashMap<K, V> crucibleMap(Object... kv) {",
             "        HashMap<K, V> m = new HashMap<>();",
             "        for (int i = 0; i < kv.length; i += 2) m.put((K) kv[i], (V) kv[i + 1]);",
             "        return m;", "    }", "",
             "    static void crucibleFail(int i) {", f'        System.err.println("{FAIL_MARK} " + i);',
             "        System.exit(1);", "    }", "", "    public static void main(String[] args) {"]
    for i, args, expected, tolerance in checks(p, literal):
        if tolerance is not None:
            lines.append(f"        if (!(Math.abs({name}({args}) - ({expected})) < {float_text(tolerance)})) "
                         f"crucibleFail({i});")
        else:
            lines.append(f"        if (!Objects.equals({name}({args}), {expected})) crucibleFail({i});")
    lines += ["    }", "}"]
    return Translation(p.task_id, "java", header, prompt, "\n".join(lines) + "\n", stop=["\n    }\n", "\n}"],
                       closer="\n    }\n", defines=rf"^\s*(public\s+|private\s+)?static\s+[^;{{=]*\b{name}\s*\(",
                       name=name)
