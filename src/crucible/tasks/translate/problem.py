"""The shared walker: one HumanEval problem (prompt + `check(candidate)`) -> a language-neutral
`Problem` (parameters, types, docstring, test cases), or Untranslatable with the reason."""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass

from crucible.tasks.translate.types import (ANY, UNKNOWN, T, Untranslatable, concrete, from_annotation, join, refine,
                                            type_of)


@dataclass
class Case:
    args: list
    expected: object
    tolerance: float | None = None


@dataclass
class Problem:
    task_id: str
    name: str
    params: list[tuple[str, T]]
    returns: T
    doc: str
    cases: list[Case]
    python_prompt: str = ""

    @property
    def number(self) -> int:
        return int(self.task_id.rsplit("/", 1)[-1])


def literal(node: ast.expr):
    """The value of a literal expression (containers, negative numbers, constant arithmetic)."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (int, float, str, bool)) or node.value is None:
            return node.value
        raise Untranslatable(f"constant {node.value!r}")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = literal(node.operand)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a, b = literal(node.left), literal(node.right)
        ops = {ast.Add: lambda x, y: x + y, ast.Sub: lambda x, y: x - y, ast.Mult: lambda x, y: x * y,
               ast.Div: lambda x, y: x / y, ast.FloorDiv: lambda x, y: x // y, ast.Mod: lambda x, y: x % y}
        if type(node.op) in ops and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b)):
            return ops[type(node.op)](a, b)
        if isinstance(node.op, ast.Add) and isinstance(a, str) and isinstance(b, str):
            return a + b
        if isinstance(node.op, ast.Pow) and isinstance(a, int) and isinstance(b, int) and 0 <= b <= 64:
            return a ** b
    if isinstance(node, ast.List):
        return [literal(e) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(literal(e) for e in node.elts)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {literal(k): literal(v) for k, v in zip(node.keys, node.values)}
    raise Untranslatable(f"non-literal expression `{ast.unparse(node)[:40]}`")


def _candidate_call(node: ast.expr) -> list | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "candidate":
        if node.keywords:
            raise Untranslatable("keyword arguments in a test call")
        return [literal(a) for a in node.args]
    return None


def parse_case(test: ast.expr) -> Case | None:
    """One assertion -> Case; `assert True` -> None; anything else -> Untranslatable."""
    if isinstance(test, ast.Constant) and test.value is True:
        return None
    args = _candidate_call(test)
    if args is not None:
        return Case(args, True)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        args = _candidate_call(test.operand)
        if args is not None:
            return Case(args, False)
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, op, right = test.left, test.ops[0], test.comparators[0]
        if isinstance(op, (ast.Eq, ast.Is)):
            for call, other in ((left, right), (right, left)):
                args = _candidate_call(call)
                if args is not None:
                    return Case(args, literal(other))
        if isinstance(op, (ast.Lt, ast.LtE)) and isinstance(left, ast.Call) and ast.unparse(left.func) in (
                "abs", "math.fabs") and len(left.args) == 1:
            diff = left.args[0]
            if isinstance(diff, ast.BinOp) and isinstance(diff.op, ast.Sub):
                args = _candidate_call(diff.left)
                if args is not None:
                    return Case(args, literal(diff.right), tolerance=float(literal(right)))
    raise Untranslatable(f"assertion `{ast.unparse(test)[:60]}` is not candidate(...) == literal")


def parse_problem(problem: dict, dynamic: bool = False) -> Problem:
    """The language-neutral form of one HumanEval problem (types inferred), or Untranslatable.

    `dynamic` (JavaScript): a parameter or result whose values have no common type becomes `any`
    instead of making the problem untranslatable."""
    name = problem["entry_point"]
    module = ast.parse(problem["prompt"])
    fns = [n for n in module.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    target = [n for n in fns if isinstance(n, ast.FunctionDef) and n.name == name]
    if not target:
        raise Untranslatable("entry point not defined in the prompt")
    if len(fns) > 1:
        raise Untranslatable("the prompt defines helper functions or classes")
    fn = target[0]
    if fn.args.vararg or fn.args.kwarg or fn.args.kwonlyargs or fn.args.defaults:
        raise Untranslatable("variadic, keyword-only or default parameters")
    doc = ast.get_docstring(fn, clean=True) or ""

    test_module = ast.parse(problem["test"])
    checks = [n for n in test_module.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    if not checks:
        raise Untranslatable("no check(candidate) function in the test")
    cases = []
    for st in checks[0].body:
        if isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant):
            continue  # a docstring or a stray string
        if (isinstance(st, ast.Expr) and isinstance(st.value, ast.Call) and isinstance(st.value.func, ast.Name)
                and st.value.func.id == "print"):
            continue  # debugging output, not a check
        if not isinstance(st, ast.Assert):
            raise Untranslatable(f"the test has a `{type(st).__name__}` statement (loops, imports, helpers)")
        case = parse_case(st.test)
        if case is not None:
            cases.append(case)
    if not cases:
        raise Untranslatable("no assertions on candidate")

    def typed(annotation, values) -> T:
        try:
            seen = UNKNOWN
            for v in values:
                seen = join(seen, type_of(v))
            return concrete(refine(from_annotation(annotation), seen))
        except Untranslatable:
            if dynamic:
                return ANY
            raise

    if any(len(c.args) != len(fn.args.args) for c in cases):
        raise Untranslatable("a test calls candidate with a different number of arguments")
    params = [(arg.arg, typed(arg.annotation, [c.args[i] for c in cases])) for i, arg in enumerate(fn.args.args)]
    returns = typed(fn.returns, [c.expected for c in cases])
    if any(c.tolerance is not None for c in cases) and returns.kind != "float":
        raise Untranslatable("a tolerance on a non-float result")
    _check_floats(cases)
    return Problem(problem["task_id"], name, params, returns, doc, cases, problem["prompt"])


def _check_floats(cases: list[Case]) -> None:
    def walk(v):
        if isinstance(v, float) and not math.isfinite(v):
            raise Untranslatable("inf/nan literal")
        if isinstance(v, (list, tuple)):
            for x in v:
                walk(x)
        if isinstance(v, dict):
            for k, x in v.items():
                walk(k)
                walk(x)
    for c in cases:
        walk(c.args)
        walk(c.expected)
