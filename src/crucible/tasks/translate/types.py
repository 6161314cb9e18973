"""Python value types of HumanEval problems, as the translators see them: `T`, joined and refined
from annotations and test values; `Untranslatable` when a target cannot express one."""

from __future__ import annotations

import ast
from dataclasses import dataclass


class Untranslatable(Exception):
    """This problem cannot be translated faithfully (for this target); the message says why."""


@dataclass(frozen=True)
class T:
    """A Python value type: kind in int float bool str none any unknown list tuple dict optional."""
    kind: str
    args: tuple["T", ...] = ()

    def __str__(self):
        if not self.args:
            return self.kind
        return f"{self.kind}[{', '.join(map(str, self.args))}]"


INT, FLOAT, BOOL, STR, NONE, ANY, UNKNOWN = (T(k) for k in ("int", "float", "bool", "str", "none", "any", "unknown"))


def list_of(t: T) -> T:
    return T("list", (t,))


def optional(t: T) -> T:
    return t if t.kind in ("optional", "none") else T("optional", (t,))


def join(a: T, b: T) -> T:
    """The least type holding both, or Untranslatable."""
    if a == b:
        return a
    if a.kind == "unknown":
        return b
    if b.kind == "unknown":
        return a
    if {a.kind, b.kind} == {"int", "float"}:
        return FLOAT
    if a.kind == "none":
        return optional(b)
    if b.kind == "none":
        return optional(a)
    if a.kind == "optional" or b.kind == "optional":
        inner_a = a.args[0] if a.kind == "optional" else a
        inner_b = b.args[0] if b.kind == "optional" else b
        return optional(join(inner_a, inner_b))
    if a.kind == b.kind and a.kind in ("list", "dict"):
        return T(a.kind, tuple(join(x, y) for x, y in zip(a.args, b.args)))
    if a.kind == b.kind == "tuple" and len(a.args) == len(b.args):
        return T("tuple", tuple(join(x, y) for x, y in zip(a.args, b.args)))
    raise Untranslatable(f"values of mixed types {a} and {b}")


def type_of(value) -> T:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return FLOAT
    if isinstance(value, str):
        return STR
    if value is None:
        return NONE
    if isinstance(value, list):
        t = UNKNOWN
        for v in value:
            t = join(t, type_of(v))
        return list_of(t)
    if isinstance(value, tuple):
        return T("tuple", tuple(type_of(v) for v in value))
    if isinstance(value, dict):
        k, v = UNKNOWN, UNKNOWN
        for kk, vv in value.items():
            k, v = join(k, type_of(kk)), join(v, type_of(vv))
        return T("dict", (k, v))
    raise Untranslatable(f"a {type(value).__name__} literal")


ANNOTATIONS = {"int": INT, "float": FLOAT, "bool": BOOL, "str": STR, "None": NONE, "Any": ANY, "list": list_of(UNKNOWN),
               "List": list_of(UNKNOWN), "dict": T("dict", (UNKNOWN, UNKNOWN)), "Dict": T("dict", (UNKNOWN, UNKNOWN)),
               "tuple": T("tuple"), "Tuple": T("tuple")}


def from_annotation(node: ast.expr | None) -> T:
    if node is None:
        return UNKNOWN
    if isinstance(node, ast.Constant) and node.value is None:
        return NONE
    if isinstance(node, ast.Name):
        if node.id in ANNOTATIONS:
            return ANNOTATIONS[node.id]
        raise Untranslatable(f"annotation {node.id}")
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        name = node.value.id
        inner = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        args = tuple(from_annotation(x) for x in inner)
        if name in ("List", "list"):
            return list_of(args[0])
        if name in ("Dict", "dict"):
            return T("dict", args)
        if name in ("Tuple", "tuple"):
            if len(args) == 2 and isinstance(inner[1], ast.Constant) and inner[1].value is Ellipsis:
                return list_of(args[0])
            return T("tuple", args)
        if name == "Optional":
            return optional(args[0])
        if name == "Union":
            t = UNKNOWN
            for a in args:
                t = join(t, a)
            return t
    raise Untranslatable(f"annotation {ast.unparse(node)}")


def refine(declared: T, seen: T) -> T:
    """Fill what an annotation leaves open (List without its element type) from the tests' values."""
    if declared.kind == "unknown":
        return seen
    if seen.kind == "unknown" or declared.kind == "any":
        return declared
    if declared.kind == "optional":
        inner = seen.args[0] if seen.kind == "optional" else seen
        return optional(refine(declared.args[0], UNKNOWN if inner.kind == "none" else inner))
    if declared.kind == "float" and seen.kind == "int":
        return FLOAT
    if declared.kind in ("list", "dict") and seen.kind == declared.kind:
        return T(declared.kind, tuple(refine(d, s) for d, s in zip(declared.args, seen.args)))
    if declared.kind == "tuple" and seen.kind == "tuple" and (not declared.args or len(declared.args) == len(seen.args)):
        return T("tuple", tuple(refine(d, s) for d, s in zip(declared.args or seen.args, seen.args)))
    if declared.kind == "list" and seen.kind == "tuple":  # Tuple[int, ...] given as a tuple literal
        return declared
    if declared == seen or join(declared, seen) == declared:
        return declared
    raise Untranslatable(f"tests pass {seen} where the annotation says {declared}")


def concrete(t: T) -> T:
    """Resolve element types no test constrained (e.g. only `[]` was ever seen) to int."""
    if t.kind == "unknown":
        return INT
    return T(t.kind, tuple(concrete(a) for a in t.args))
