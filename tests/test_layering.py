"""The rooms of src/crucible and who may import whom (docs/contributing.md, "Rooms").

The import graph is built with `ast` from every module's import statements, wherever they are in the
file (an import inside a function is still a dependency), so a cycle hidden by a lazy import is
found too. Imports through `importlib` (the language and translator plug-ins) are not seen.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# room -> rooms it must never import (a room is a package or module under crucible; "crucible.x" covers
# crucible.x and everything below it). The measure path, low to high: io, languages, tasks, sanitize,
# generate, grade, eval, report; commands and cli above everything. Beside it: sandbox (with
# sandbox.pyenv, the opt-in Python env) below languages; serve (the HTTP server over the model and
# the backends' types) beside eval; recipes (TOML data) imports nothing; testing (test fixtures) may
# import the rooms it builds models and tasks from, and nothing in src imports it; scale (Ray fan-out of
# grading and sampling) sits beside eval, and only commands wire it in.
MEASURE_PATH = ["crucible.languages", "crucible.tasks", "crucible.sanitize", "crucible.generate", "crucible.grade",
                "crucible.eval", "crucible.report"]
FORBIDDEN = {
    "crucible.io": ["crucible"],
    "crucible.metrics": ["crucible"],
    "crucible.recipes": ["crucible"],
    "crucible.sandbox": MEASURE_PATH + ["crucible.serve", "crucible.model", "crucible.train"],
    "crucible.sandbox.pyenv": MEASURE_PATH + ["crucible.serve", "crucible.model", "crucible.train"],
    "crucible.serve": ["crucible.tasks", "crucible.grade", "crucible.eval", "crucible.report", "crucible.train"],
    "crucible.testing": ["crucible.grade", "crucible.eval", "crucible.report", "crucible.serve"],
    "crucible.languages": ["crucible.tasks", "crucible.sanitize", "crucible.generate", "crucible.grade",
                           "crucible.eval", "crucible.report"],
    "crucible.tasks": ["crucible.sanitize", "crucible.generate", "crucible.grade", "crucible.eval",
                       "crucible.report"],
    "crucible.sanitize": ["crucible.tasks", "crucible.generate", "crucible.grade", "crucible.eval",
                          "crucible.report"],
    "crucible.generate": ["crucible.grade", "crucible.eval", "crucible.report"],
    "crucible.grade": ["crucible.generate", "crucible.eval", "crucible.report"],
    "crucible.eval": ["crucible.report"],
    "crucible.report": ["crucible.generate", "crucible.eval"],
    "crucible.scale": ["crucible.eval", "crucible.report", "crucible.serve", "crucible.train"],
}
for _room in MEASURE_PATH:  # the server sits on top of the backends; nothing on the measure path uses it
    FORBIDDEN[_room].append("crucible.serve")
# Post-training sits on the training loop and the graders, below the improve loop and the commands: no
# room beneath it imports it, and it never reaches up to eval, report or serve.
for _room in list(FORBIDDEN):
    FORBIDDEN[_room].append("crucible.posttrain")
FORBIDDEN["crucible.posttrain"] = ["crucible.eval", "crucible.report", "crucible.serve", "crucible.testing"]
# The improve loop sits on top of measuring and training (below the commands only): nothing imports it.
for _room in list(FORBIDDEN):
    FORBIDDEN[_room].append("crucible.improve")
FORBIDDEN["crucible.improve"] = ["crucible.serve", "crucible.testing"]
# Only these may import the command layer (UsageError lives in crucible.cli).
COMMAND_LAYER = ("crucible.cli", "crucible.commands")
MAY_USE_COMMANDS = ("crucible.cli", "crucible.commands", "crucible.__main__", "crucible.demo", "crucible.tour")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    base = SRC.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path) -> set[str]:
    """The crucible modules `path` imports anywhere in its body."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.add(sub if is_module(sub) else base)
    return {m for m in found if m == "crucible" or m.startswith("crucible.")}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted((SRC / "crucible").rglob("*.py"))}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a module importing itself (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def within(module: str, room: str) -> bool:
    return module == room or module.startswith(room + ".")


def test_the_graph_sees_lazy_imports(graph):
    # eval's command imports its pipeline inside main(): the graph must still have that edge.
    assert "crucible.eval.pipeline" in graph["crucible.commands.eval"]


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_in_crucible(graph):
    assert cycles(graph) == []


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_rooms_import_only_rooms_below_them(graph, room):
    bad = sorted(f"{m} -> {target}" for m, targets in graph.items() if within(m, room)
                 for target in targets for forbidden in FORBIDDEN[room]
                 if within(target, forbidden) and not within(target, room))
    assert bad == []


def test_only_commands_use_the_command_layer(graph):
    bad = sorted(f"{m} -> {target}" for m, targets in graph.items()
                 if not any(within(m, ok) for ok in MAY_USE_COMMANDS)
                 for target in targets if any(within(target, c) for c in COMMAND_LAYER))
    assert bad == []


def test_nothing_in_src_imports_the_test_fixtures(graph):
    bad = sorted(f"{m} -> {target}" for m, targets in graph.items() if not within(m, "crucible.testing")
                 for target in targets if within(target, "crucible.testing"))
    assert bad == []


def test_no_argparse_below_commands(graph):
    users = sorted(module_name(p) for p in (SRC / "crucible").rglob("*.py")
                   if not any(within(module_name(p), ok) for ok in MAY_USE_COMMANDS)
                   and ("argparse" in p.read_text(encoding="utf-8") or "Namespace(" in p.read_text(encoding="utf-8")))
    assert users == []
