"""REPRODUCE.md cannot silently rot: every command in its command column must still exist.

Each table row is `figure | command | conditions | checked`; the command cell's code spans are the
commands. A file a command names (bench/, scripts/, tests/) must exist, a `--flag` given to a bench
or script must appear in its source, a `pytest tests/x.py::name` must name a `def name` (an AST scan:
nothing is imported or collected), a `crucible ...` line must be accepted by the real parser
(`crucible.cli.build_parser`, which only parses: nothing runs), and a `make X` target must be in the
Makefile. A command of any other form fails, so nothing unchecked can enter the file.

Not covered: that a command still produces the figure beside it (that is what its "checked" cell
records, from a real run), and flags of bench scripts are matched as strings, not parsed.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

from crucible import cli

ROOT = Path(__file__).resolve().parents[1]
REPRODUCE = ROOT / "REPRODUCE.md"
CODE_SPAN = re.compile(r"`([^`]+)`")
ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def table_rows(text: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every table body row; header and separator rows are skipped."""
    rows = []
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        following = lines[number] if number < len(lines) else ""
        if set(following) <= set("|-: ") and following.startswith("|"):
            continue  # the header: the next line is the separator
        rows.append((number, [cell.strip() for cell in line.strip().strip("|").split("|")]))
    return rows


def commands() -> list[tuple[int, str]]:
    return [(number, span) for number, cells in table_rows(REPRODUCE.read_text())
            for span in CODE_SPAN.findall(cells[1])]


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")}


def check_pytest(args: list[str]) -> None:
    targets = [a for a in args if not a.startswith("-")]
    assert targets, "pytest names no test file"
    for target in targets:
        file, _, name = target.partition("::")
        assert (ROOT / file).is_file(), f"no test file {file}"
        if name:
            assert name in defined_tests(ROOT / file), f"{file} has no test {name}"


def check_script(args: list[str]) -> None:
    script = next((a for a in args if re.match(r"(bench|scripts)/.+\.(py|sh)$", a)), None)
    assert script, f"no bench/ or scripts/ file in {args}"
    assert (ROOT / script).is_file(), f"no file {script}"
    source = (ROOT / script).read_text()
    for flag in args[args.index(script) + 1:]:
        if flag.startswith("--"):
            assert f'"{flag.split("=")[0]}"' in source, f"{script} takes no {flag}"


def check_crucible(args: list[str]) -> None:
    assert args and args[0] in cli.COMMANDS, f"no crucible subcommand {args[:1]}"
    try:
        cli.build_parser().parse_args(args)
    except SystemExit as e:
        raise AssertionError(f"crucible {' '.join(args)}: the parser refused it (exit {e.code})") from None


def check_make(args: list[str]) -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in args:
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"no make target {target}"


def check(command: str) -> None:
    words = shlex.split(command)
    while words and ENV_ASSIGNMENT.match(words[0]):
        words = words[1:]
    head, args = words[0], words[1:]
    if head == "pytest":
        check_pytest(args)
    elif head == "crucible":
        check_crucible(args)
    elif head == "make":
        check_make(args)
    elif head == "torchrun":
        assert "-m" in args and args[args.index("-m") + 1] == "crucible", "torchrun runs no crucible"
        check_crucible(args[args.index("-m") + 2:])
    elif head.endswith("python") and args[:1] == ["-c"]:
        compile(args[1], command, "exec")
    elif head.endswith("python") or head == "bash":
        check_script(args)
    else:
        raise AssertionError(f"unknown command form: {command}")


def test_every_row_has_four_cells_a_command_or_a_reason_and_a_checked_note():
    rows = table_rows(REPRODUCE.read_text())
    assert len(rows) >= 50, "REPRODUCE.md lost its tables"
    for number, cells in rows:
        assert len(cells) == 4, f"REPRODUCE.md:{number}: {len(cells)} cells"
        has_command = bool(CODE_SPAN.search(cells[1]))
        assert has_command or "not in the repo" in cells[1] or cells[1].startswith("see "), \
            f"REPRODUCE.md:{number}: no command and no reason"
        assert cells[3], f"REPRODUCE.md:{number}: empty checked cell"


def test_every_doc_has_its_section():
    headings = set(re.findall(r"^## (\S+)", REPRODUCE.read_text(), re.M))
    docs = {"README.md"} | {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert docs <= headings, f"no section for {sorted(docs - headings)}"


@pytest.mark.parametrize("line, command", commands(), ids=lambda v: str(v)[:60])
def test_command_refers_to_things_that_exist(line, command):
    try:
        check(command)
    except AssertionError as e:
        raise AssertionError(f"REPRODUCE.md:{line}: `{command}`: {e}") from None


@pytest.mark.parametrize("command, problem", [
    ("pytest tests/test_reproduce.py::test_that_is_not_there", "has no test"),
    ("python bench/grading_throughput.py --no-such-flag", "takes no --no-such-flag"),
    ("crucible no-such-command", "no crucible subcommand"),
    ("crucible eval humaneval --no-such-flag", "the parser refused it"),
    ("make no-such-target", "no make target"),
    ("python bench/no_such_bench.py", "no file"),
    ("curl http://example.com", "unknown command form"),
])
def test_the_checker_catches_a_broken_command(command, problem):
    with pytest.raises(AssertionError, match=problem):
        check(command)
