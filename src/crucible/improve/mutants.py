"""Mutants of a reference function: small AST edits its tests should notice.

Why: a model that writes a problem also writes its tests, and weak tests (`assert candidate(1) is
not None`) pass almost anything. Mutation testing (DeMillo et al. 1978; mutmut, cosmic-ray) measures
that: a test suite that lets every slightly-wrong version of the reference pass checks nothing. We
hand-write the few operators we need because the mutation tools run whole test suites on files on
disk; here the mutants are only *text* to grade in the sandbox, made in-process with `ast` (model
text is parsed and unparsed, never executed).

Operators, one edit per mutant: a comparison flipped (< to <=, == to !=, in to not in, ...), an
arithmetic operator swapped (+ and -, * and /, // to /, % to //), `and` and `or` swapped, an int
constant off by one (both ways), True and False swapped, an `if`/`while` condition negated, and a
`return X` made to return the empty value of X's type (`type(X)()`: 0, '', [], False; not None, so
`is not None` tests still have to notice). Mutants whose code equals the reference's are dropped;
at most MAX_MUTANTS are kept, spread evenly over the function.

Not covered: equivalent mutants that differ in text (they survive any test: a mutation score below
1 is not always the tests' fault), statement deletion, mutating nested functions' defaults.
"""

from __future__ import annotations

import ast
import copy
import textwrap

MAX_MUTANTS = 12
COMPARE = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
           ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
ARITHMETIC = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
              ast.Mod: ast.FloorDiv}
BOOLEAN = {ast.And: ast.Or, ast.Or: ast.And}


def edits(node: ast.AST) -> list[str]:
    """The mutations that apply to one node, by name (see `apply`)."""
    if isinstance(node, ast.Compare):
        return [f"compare {i}" for i, op in enumerate(node.ops) if type(op) in COMPARE]
    if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in ARITHMETIC:
        return ["arithmetic"]
    if isinstance(node, ast.BoolOp):
        return ["boolean"]
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return ["plus one", "minus one"]
    if isinstance(node, ast.Constant) and type(node.value) is bool:
        return ["negate constant"]
    if isinstance(node, (ast.If, ast.While)):
        return ["negate condition"]
    if isinstance(node, ast.Return) and node.value is not None and not (
            isinstance(node.value, ast.Constant) and node.value.value is None):
        return ["empty return"]
    return []


def apply(node: ast.AST, edit: str) -> None:
    """Make `edit` (one of `edits(node)`) to `node` in place."""
    if edit.startswith("compare "):
        i = int(edit.split()[1])
        node.ops[i] = COMPARE[type(node.ops[i])]()
    elif edit == "arithmetic":
        node.op = ARITHMETIC[type(node.op)]()
    elif edit == "boolean":
        node.op = BOOLEAN[type(node.op)]()
    elif edit in ("plus one", "minus one"):
        node.value += 1 if edit == "plus one" else -1
    elif edit == "negate constant":
        node.value = not node.value
    elif edit == "negate condition":
        node.test = ast.UnaryOp(ast.Not(), node.test)
    elif edit == "empty return":
        node.value = ast.Call(ast.Call(ast.Name("type", ast.Load()), [node.value], []), [], [])


def body_nodes(function: ast.FunctionDef) -> list[ast.AST]:
    """Every node of the function's body after its docstring, in a fixed order."""
    return [n for stmt in function.body[1:] for n in ast.walk(stmt)]


def body_text(function: ast.FunctionDef) -> str:
    """The function's body after the docstring as a completion: statements indented under the def."""
    return "".join(textwrap.indent(ast.unparse(stmt), "    ") + "\n" for stmt in function.body[1:])


def mutants(function: ast.FunctionDef, limit: int = MAX_MUTANTS) -> list[dict]:
    """Up to `limit` distinct mutants of `function` (a def whose first statement is its docstring):
    {"edit": what changed, "line": where, "completion": the mutated body, as the reference's}."""
    original = body_text(function)
    sites = [(i, edit) for i, node in enumerate(body_nodes(function)) for edit in edits(node)]
    out, seen = [], {original}
    for i, edit in sites:
        changed = copy.deepcopy(function)
        node = body_nodes(changed)[i]
        apply(node, edit)
        ast.fix_missing_locations(changed)
        text = body_text(changed)
        if text not in seen:
            seen.add(text)
            out.append({"edit": edit, "line": getattr(node, "lineno", function.lineno), "completion": text})
    if len(out) <= limit:
        return out
    return [out[k * len(out) // limit] for k in range(limit)]
