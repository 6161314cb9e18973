"""Inject one small bug into a Python module: SWE-smith's procedural mutations, done with `ast`.

Each mutation finds a site with `ast` (inside a function body only, so the module still imports)
and edits the source text at that node's exact position, keeping every other byte as it was: the
diff is the bug and nothing else (no reformatting from `ast.unparse`, comments kept), which is
what makes an instance solvable by a small model. A mutation is re-parsed (`broken`) only when it
is about to be used: one that would not parse, or leaves the program unchanged, is dropped then.

Kinds (a site can give several):
  flip_comparison     <  <=  >  >=  ==  !=  is  in  turned into its neighbour or negation
  wrong_operator      +/-, * and //, & and |, << and >>, and/or swapped
  off_by_one          an integer constant n becomes n + 1 (or n - 1)
  changed_constant    True <-> False
  swapped_arguments   the first two positional arguments of a call swapped
  removed_statement   a simple statement (or a guard `if` without else) removed from a longer body
  removed_branch      an if's else/elif branch removed
  inverted_condition  the test of an if/while/conditional expression wrapped in `not (...)`

Whether a mutation is a bug the tests see is decided by running them (`crucible.swe.build`), not
here. Not covered: mutations spanning functions (SWE-smith's "combine" bugs), class-level or
module-level code, and LLM-written rewrites.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import re
from dataclasses import dataclass

FLIP_COMPARE = {ast.Lt: "<=", ast.LtE: "<", ast.Gt: ">=", ast.GtE: ">", ast.Eq: "!=", ast.NotEq: "==",
                ast.Is: "is not", ast.IsNot: "is", ast.In: "not in", ast.NotIn: "in"}
COMPARE_TEXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
                ast.Is: r"is", ast.IsNot: r"is\s+not", ast.In: r"in", ast.NotIn: r"not\s+in"}
SWAP_OPERATOR = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "//"), ast.FloorDiv: ("//", "*"),
                 ast.BitAnd: ("&", "|"), ast.BitOr: ("|", "&"), ast.LShift: ("<<", ">>"),
                 ast.RShift: (">>", "<<"), ast.Mod: ("%", "//")}
SIMPLE_STATEMENTS = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Delete)


@dataclass(frozen=True)
class Mutation:
    kind: str
    function: str   # qualified name of the function it is in
    line: int       # 1-based line of the site in the original
    source: str     # the whole module after the mutation

    @property
    def key(self) -> str:
        """A stable short id: the same mutation of the same source always gets the same key."""
        return hashlib.sha256(f"{self.kind}\x1f{self.line}\x1f{self.source}".encode()).hexdigest()[:8]


class _Text:
    """The module's lines, with (line, col) <-> offset conversion for ast positions (UTF-8 columns)."""

    def __init__(self, source: str):
        self.source = source
        self.lines = source.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, line: int, col_bytes: int) -> int:
        text = self.lines[line - 1]
        return self.starts[line - 1] + len(text.encode()[:col_bytes].decode(errors="ignore"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return self.offset(node.lineno, node.col_offset), self.offset(node.end_lineno, node.end_col_offset)

    def replace(self, start: int, end: int, new: str) -> str:
        return self.source[:start] + new + self.source[end:]

    def whole_lines(self, first: int, last: int) -> tuple[int, int]:
        """Offsets covering lines first..last (1-based)."""
        return self.starts[first - 1], self.starts[last]


def _functions(tree: ast.Module):
    """(qualified name, function node) for every function and method, outermost first."""
    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                yield name, child
                yield from walk(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
    yield from walk(tree, "")


def _own_nodes(fn: ast.AST):
    """Nodes of `fn`'s body, not descending into nested functions or classes (they are their own sites)."""
    stack = list(reversed(fn.body))
    while stack:
        node = stack.pop()
        yield node
        for child in reversed(list(ast.iter_child_nodes(node))):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                stack.append(child)


def _is_docstring(body: list, stmt) -> bool:
    return (body and stmt is body[0] and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str))


def _gap_edit(text: _Text, left: ast.AST, right: ast.AST, pattern: str, new: str) -> str | None:
    """Replace the one operator between two operand nodes (matched by `pattern`) with `new`."""
    start, end = text.span(left)[1], text.span(right)[0]
    gap = text.source[start:end]
    found = list(re.finditer(rf"(?<![<>=!*/&|]){pattern}(?![<>=*/&|])", gap))
    if len(found) != 1:
        return None
    m = found[0]
    return text.replace(start + m.start(), start + m.end(), new)


def _sites(text: _Text, fn) -> list[tuple[str, int, str | None]]:
    """(kind, line, mutated source or None) for every site in one function."""
    out = []
    for node in _own_nodes(fn):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Compare):
            left = node.left
            for op, right in zip(node.ops, node.comparators):
                if type(op) in FLIP_COMPARE:
                    word = r"\b" if type(op) in (ast.Is, ast.IsNot, ast.In, ast.NotIn) else ""
                    pattern = f"{word}{COMPARE_TEXT[type(op)]}{word}"
                    out.append(("flip_comparison", line, _gap_edit(text, left, right, pattern, FLIP_COMPARE[type(op)])))
                left = right
        elif isinstance(node, ast.BinOp) and type(node.op) in SWAP_OPERATOR:
            old, new = SWAP_OPERATOR[type(node.op)]
            out.append(("wrong_operator", line, _gap_edit(text, node.left, node.right, re.escape(old), new)))
        elif isinstance(node, ast.BoolOp) and len(node.values) == 2:
            old, new = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
            out.append(("wrong_operator", line, _gap_edit(text, node.values[0], node.values[1], rf"\b{old}\b", new)))
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            start, end = text.span(node)
            out.append(("changed_constant", line, text.replace(start, end, str(not node.value))))
        elif isinstance(node, ast.Constant) and type(node.value) is int and 0 <= node.value <= 64:
            start, end = text.span(node)
            if text.source[start:end] == str(node.value):
                new = node.value + 1 if node.value in (0, 1) or line % 2 else node.value - 1
                out.append(("off_by_one", line, text.replace(start, end, str(new))))
        elif isinstance(node, ast.Call) and len(node.args) >= 2 and not any(
                isinstance(a, ast.Starred) for a in node.args[:2]):
            (s0, e0), (s1, e1) = text.span(node.args[0]), text.span(node.args[1])
            a0, a1 = text.source[s0:e0], text.source[s1:e1]
            if a0 != a1:
                out.append(("swapped_arguments", line, text.source[:s0] + a1 + text.source[e0:s1] + a0 + text.source[e1:]))
        elif isinstance(node, (ast.If, ast.While, ast.IfExp)):
            start, end = text.span(node.test)
            out.append(("inverted_condition", line, text.replace(start, end, f"not ({text.source[start:end]})")))
            if isinstance(node, ast.If) and node.orelse:
                out.append(("removed_branch", line, _drop_else(text, node)))
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list) and len(body) >= 2:
                out += [("removed_statement", stmt.lineno, _drop_statement(text, stmt))
                        for stmt in body if _removable(body, stmt)]
    return out


def _removable(body: list, stmt) -> bool:
    if _is_docstring(body, stmt):
        return False
    return isinstance(stmt, SIMPLE_STATEMENTS) or (isinstance(stmt, ast.If) and not stmt.orelse)


def _alone_on_lines(text: _Text, node) -> bool:
    before = text.lines[node.lineno - 1].encode()[:node.col_offset].decode(errors="ignore")
    after = text.lines[node.end_lineno - 1].encode()[node.end_col_offset:].decode(errors="ignore")
    return not before.strip() and (not after.strip() or after.strip().startswith("#"))


def _drop_statement(text: _Text, stmt) -> str | None:
    if not _alone_on_lines(text, stmt):
        return None
    start, end = text.whole_lines(stmt.lineno, stmt.end_lineno)
    return text.replace(start, end, "")


def _drop_else(text: _Text, node: ast.If) -> str | None:
    """Remove `else:`/`elif ...:` and everything after it in this if statement."""
    first = node.orelse[0]
    head = text.lines[first.lineno - 1]
    if isinstance(first, ast.If) and head.lstrip().startswith("elif"):
        start_line = first.lineno  # "elif" sits on the orelse's own line
    else:
        start_line = next((n for n in range(node.body[-1].end_lineno + 1, first.lineno + 1)
                           if re.match(r"\s*else\s*:", text.lines[n - 1])), None)
        if start_line is None:
            return None
    if not _alone_on_lines(text, node):
        return None
    start, end = text.whole_lines(start_line, node.end_lineno)
    return text.replace(start, end, "")


def mutations(source: str, *, skip_functions: tuple[str, ...] = ()) -> list[Mutation]:
    """Every single-site mutation of `source`, in source order. Cheap: none is parsed here (a
    module gives hundreds; `broken` checks the one about to be used)."""
    tree = ast.parse(source)
    text = _Text(source)
    found: dict[str, Mutation] = {}
    for name, fn in _functions(tree):
        if name.split(".")[-1] in skip_functions:
            continue
        for kind, line, new in _sites(text, fn):
            if new is not None and new != source:
                m = Mutation(kind, name, line, new)
                found.setdefault(m.key, m)
    return sorted(found.values(), key=lambda m: (m.line, m.kind, m.key))


@functools.lru_cache(maxsize=8)
def _tree_dump(source: str) -> str:
    return ast.dump(ast.parse(source))


def broken(mutation: Mutation, original: str) -> str | None:
    """Why this mutation is unusable (it does not parse, or parses to the same code), or None."""
    try:
        if _tree_dump(mutation.source) == _tree_dump(original):
            return "the mutated code is the same program"
    except SyntaxError as e:
        return f"the mutated code does not parse ({e.msg})"
    return None
