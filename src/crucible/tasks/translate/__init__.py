"""Translate HumanEval problems (signature + docstring, and their `assert candidate(...) == ...` tests)
into other languages: one shared walker over Python's `ast`, one small translator per target language.

The idea is MultiPL-E's (Cassano et al. 2022); the code is written for this project. What the walker
does, for every target alike:

1. Parse the prompt: the entry-point function's parameters, their annotations, the docstring. A prompt
   that defines other functions or classes is not translated (the helpers would need translating too).
2. Parse `check(candidate)`: every statement must be an assertion comparing one call of `candidate` on
   literal arguments with a literal (`==`, `is`, bare truthiness, `not`, or `abs(candidate(...) - x) <
   tol` which keeps its tolerance). Literals are evaluated from the AST (constant arithmetic such as
   `2.0/3.0` included), never by running the test.
3. Types: from the annotations where present, else inferred by joining the types of all the literal
   values the tests pass and expect (int joins float to float, None makes an Optional, an empty list
   takes its element type from the others). A type a target cannot express (mixed unions, Any, a
   heterogeneous tuple in Go) makes that problem untranslatable *for that target*, with the reason.
4. The translator renders the prompt (doc comment + signature, open for the body), the literals
   (typed, escaped for that language's string syntax), and a test main that compares with the
   language's deep equality and prints which test failed. Docstring examples (`>>> f([1, 2])` and
   the result line after it) are rewritten with the same literal renderer; the prose stays as is.

A translator is mostly declarative: its type names (`spell` with a table and compound forms), its
value syntax (a `Literals` of small hooks for the shared `render` walker) and its string escapes (the
shared `quote` with its escape table and control-character format); what is left is its test main.

Not covered: prose that names Python values ("return None") is not reworded; tests with loops,
random inputs or helper code (e.g. HumanEval/32, /38, /50, /53) are reported as untranslatable.
"""

from __future__ import annotations

import ast
import importlib
import math
import re
from dataclasses import dataclass
from typing import Callable

TARGETS = ["javascript", "typescript", "go", "rust", "java", "cpp", "ocaml"]
FAIL_MARK = "CRUCIBLE-TEST-FAILED"   # printed by a translated test before it exits with status 1


class Untranslatable(Exception):
    """This problem cannot be translated faithfully (for this target); the message says why."""


# ---- types -------------------------------------------------------------------------------------

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


# ---- the walker --------------------------------------------------------------------------------

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


# ---- shared helpers for translators ------------------------------------------------------------

def check_int_range(value) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and not -(2 ** 63) <= value < 2 ** 63:
        raise Untranslatable(f"integer {value} does not fit in 64 bits")


def float_text(value: float) -> str:
    """A float literal every target parses to the same double (repr round-trips; always has . or e)."""
    text = repr(float(value))
    return text if any(c in text for c in ".e") else text + ".0"


def spell(t: T, names: dict[str, str], forms: dict[str, Callable[[list[str]], str]], part) -> str:
    """The target's name for type `t`: `names` spells the scalar kinds, `forms[kind]` builds a compound
    kind from the names of its parts, each spelled by `part` (the target's own type_name, so that its
    refusals apply at every depth). A kind with neither is Untranslatable."""
    if t.kind in names:
        return names[t.kind]
    if t.kind in forms:
        return forms[t.kind]([part(a) for a in t.args])
    raise Untranslatable(f"type {t}")


def refuse_surrogates(value: str) -> str:
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise Untranslatable("a lone surrogate in a string")
    return value


def quote(value: str, escapes: dict[str, str], control: str = "\\{:03o}", quote: str = '"') -> str:
    """A string literal: each character in `escapes` is replaced by its escape, other control
    characters (below U+0020, and DEL) are written with the `control` format (given the code point),
    and a lone surrogate, which no target's source text can hold, is refused."""
    out = []
    for ch in refuse_surrogates(value):
        if ch in escapes:
            out.append(escapes[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(control.format(ord(ch)))
        else:
            out.append(ch)
    return quote + "".join(out) + quote


@dataclass(frozen=True)
class Literals:
    """How one target writes values. Every hook gets parts already rendered; the type `t` is the
    value's own, for hooks that spell it. A hook left None means the target has no such form."""
    integer: Callable[[int], str]                                 # an int already known to fit 64 bits
    string: Callable[[str], str]                                  # a str value
    sequence: Callable[[list[str], T], str]                       # a list (or a tuple typed as a list)
    tuple: Callable[[list[str], T], str] | None = None            # None: tuples are written as sequences
    mapping: Callable[[list[tuple[str, str]], T], str] | None = None  # (key, value) pairs
    optional: Callable[[str | None, T], str] | None = None        # None: an Optional is its inner type
    floating: Callable[[str], str] = str                          # gets float_text(value)
    none: str | None = None                                       # what None is whatever the type (JS)
    untyped: Callable[[object], T] | None = None                  # the type to write a value of type Any as
    no_none: str = "None where the type is not Optional"          # why None is refused
    no_keys: str | None = None                                    # why a dict with non-str keys is refused


def render(value, t: T, lang: Literals) -> str:
    """`value` (a Python literal of type `t`) in the target's syntax, or Untranslatable."""
    if value is None and lang.none is not None:
        return lang.none
    if t.kind == "any" and lang.untyped is not None:
        t = lang.untyped(value)
    if t.kind == "optional":
        if lang.optional is None:
            return render(value, t.args[0], lang)
        return lang.optional(None if value is None else render(value, t.args[0], lang), t)
    if value is None:
        raise Untranslatable(lang.no_none)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and t.kind != "float":
        check_int_range(value)
        return lang.integer(value)
    if isinstance(value, (int, float)):
        return lang.floating(float_text(value))
    if isinstance(value, str):
        return lang.string(value)
    if isinstance(value, (list, tuple)) and (t.kind == "list" or lang.tuple is None):
        return lang.sequence([render(v, t.args[0], lang) for v in value], t)
    if isinstance(value, tuple):
        return lang.tuple([render(v, et, lang) for v, et in zip(value, t.args)], t)
    if isinstance(value, dict) and lang.mapping is not None:
        if lang.no_keys is not None and any(not isinstance(k, str) for k in value):
            raise Untranslatable(lang.no_keys)
        return lang.mapping([(render(k, t.args[0], lang), render(v, t.args[1], lang)) for k, v in value.items()], t)
    raise Untranslatable(f"value {value!r}")


def signature(p: Problem, reserved: set[str], param=lambda name, t: name, sep: str = ", ") -> tuple[str, str]:
    """The function's name and its parameter list (`param(name, type)` writes one), clear of `reserved`."""
    params = sep.join(param(safe_name(n, reserved), t) for n, t in p.params)
    return safe_name(p.name, reserved), params


def checks(p: Problem, literal, sep: str = ", "):
    """Each test case as (index, its arguments and expected value rendered by `literal`, tolerance)."""
    for i, c in enumerate(p.cases):
        args = sep.join(literal(v, t) for v, (_, t) in zip(c.args, p.params))
        yield i, args, literal(c.expected, p.returns), c.tolerance


def translate_doc(p: Problem, render, name: str, call_syntax=lambda f, args: f"{f}({', '.join(args)})") -> str:
    """The docstring with its `>>> f(args)` examples and their results in the target's syntax (each
    example that does not translate stays as Python). `render(value, type)` is the target's literal,
    `call_syntax(name, rendered_args)` its call syntax."""
    lines = p.doc.splitlines()
    out, expect_result = [], False
    for line in lines:
        stripped = line.strip()
        indent = line[:len(line) - len(line.lstrip())]
        if stripped.startswith(">>>"):
            expect_result = False
            try:
                call = ast.parse(stripped[3:].strip(), mode="eval").body
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == p.name
                        and len(call.args) == len(p.params) and not call.keywords):
                    raise Untranslatable("not a call of the function")
                args = [render(literal(a), t) for a, (_, t) in zip(call.args, p.params)]
                out.append(f"{indent}>>> {call_syntax(name, args)}")
                expect_result = True
                continue
            except (Untranslatable, SyntaxError, ValueError, TypeError, ZeroDivisionError):
                pass
        elif expect_result and stripped:
            expect_result = False
            try:
                out.append(indent + render(literal(ast.parse(stripped, mode="eval").body), p.returns))
                continue
            except (Untranslatable, SyntaxError, ValueError, TypeError, ZeroDivisionError):
                pass
        out.append(line)
    return "\n".join(out)


def comment_block(doc: str, prefix: str, indent: str = "") -> str:
    return "".join(f"{indent}{prefix} {line}".rstrip() + "\n" for line in doc.splitlines())


IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def safe_name(name: str, reserved: set[str]) -> str:
    if not IDENT.match(name):
        raise Untranslatable(f"identifier {name!r}")
    return name + "_" if name in reserved else name


@dataclass
class Translation:
    task_id: str
    language: str
    header: str            # imports / package / class opening that precede the function
    prompt: str            # what a model completes: header, doc comment, signature, open body
    tests: str             # appended after the function: the test main (and closing the class)
    stop: list[str]        # where a completed body ends; the completion is cut there
    closer: str            # ends the function after a body cut at a stop sequence
    defines: str           # regex: the completion holds a whole definition of the function
    name: str = ""

    braces: bool = True    # the body is closed by a matching "}" (all but OCaml)

    def program(self, code: str) -> str:
        """The test program for a completion: a whole function definition (e.g. a chat model's fenced
        block) replaces the prompt; a body continues the prompt and ends at the brace that closes the
        function (found by matching braces, so indentation does not matter) or, without braces, at
        the first stop sequence."""
        if re.search(self.defines, code, re.M):
            return self.header + code.rstrip() + "\n" + self.tests
        if self.braces:
            cut = closing_brace(code, single_quoted_strings=self.language in ("javascript", "typescript"))
        else:
            cut = min([i for i in (code.find(s) for s in self.stop) if i >= 0], default=len(code))
        return self.prompt + code[:cut].rstrip("\n") + self.closer + self.tests


CHAR_LITERAL = re.compile(r"'(\\.[^']{0,8}|[^\\'\n])'")


def closing_brace(code: str, single_quoted_strings: bool = False) -> int:
    """Index of the "}" closing a body whose "{" is already open (len(code) if it never closes).
    Skips string, char and template literals and // and /* */ comments; a quote that does not start
    a char literal (a Rust lifetime) is just a character."""
    depth, i, n = 1, 0, len(code)
    while i < n:
        c = code[i]
        if code.startswith("//", i):
            i = code.find("\n", i)
            i = n if i < 0 else i
            continue
        if code.startswith("/*", i):
            i = code.find("*/", i + 2)
            i = n if i < 0 else i + 2
            continue
        if c in "\"`" or (c == "'" and single_quoted_strings):
            j = i + 1
            while j < n and code[j] != c:
                j += 2 if code[j] == "\\" else 1
            i = j + 1
            continue
        if c == "'":
            m = CHAR_LITERAL.match(code, i)
            i = m.end() if m else i + 1
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return n


def translator(language: str):
    from crucible.languages import get

    return importlib.import_module(f"crucible.tasks.translate.{get(language).name}")


def translate(problem: dict, language: str) -> Translation:
    """Translate one HumanEval problem to `language`, or raise Untranslatable with the reason."""
    module = translator(language)
    parsed = parse_problem(problem, dynamic=getattr(module, "DYNAMIC", False))
    return module.translate(parsed)
