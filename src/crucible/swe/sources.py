"""Where instances come from: real modules with their real tests, which no one here wrote.

`stdlib`: pure-Python standard-library modules, each with its test file from CPython's own suite
(Debian's libpython3.11-testsuite, matching the sandbox's /usr/bin/python3). A repo holds the
module at its root and the test at tests/test_<module>.py; `python3 -m unittest` puts the repo root
first on sys.path, so the tests import the repo's copy (the one with the bug), not /usr/lib's. The
modules are ones whose tests are self-contained and take well under 5 s on one core.

`DIR`: any git repository (its HEAD) with a test command run at its root, e.g.
`python3 -m unittest -v` or `python3 -m pytest -rA` (pytest only if the sandbox's python has it:
installed Python packages are hidden there). Python files outside test directories are mutated.

Not covered: repositories that need installing or building first, and non-Python sources.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from crucible.swe import gitrepo

STDLIB = Path("/usr/lib/python3.11")
STDLIB_TESTS = STDLIB / "test"
SANDBOX_PYTHON = "/usr/bin/python3"
# Pure-Python modules whose CPython tests run in about a second (the C accelerators of bisect and
# heapq do not hide a bug: their tests also run the pure-Python versions).
STDLIB_MODULES = ("textwrap", "colorsys", "fractions", "bisect", "heapq", "shlex", "string", "graphlib",
                  "base64", "getopt", "ipaddress")
TEST_PATH = re.compile(r"(^|/)(tests?|testing)/|(^|/)test_[^/]*\.py$|_test\.py$|(^|/)conftest\.py$")


class SourceError(ValueError):
    pass


@dataclass
class Source:
    repo: str                   # instance "repo" field, also the repos/<repo>.git path
    target: str                 # what the problem statement calls it ("the textwrap module")
    files: dict[str, bytes]     # the clean tree
    mutable: list[str]          # files bugs are injected into
    test_files: list[str]       # restored before grading
    test_cmd: str
    log_parser: str


def stdlib(module: str) -> Source:
    code, test = STDLIB / f"{module}.py", STDLIB_TESTS / f"test_{module}.py"
    if not code.is_file():
        raise SourceError(f"{code}: no such standard-library module")
    if not test.is_file():
        raise SourceError(f"{test}: missing; install CPython's tests: apt-get install libpython3.11-testsuite")
    test_path = f"tests/test_{module}.py"
    return Source(repo=f"stdlib/{module}", target=f"the `{module}` module ({module}.py)",
                  files={f"{module}.py": code.read_bytes(), test_path: test.read_bytes()},
                  mutable=[f"{module}.py"], test_files=[test_path],
                  test_cmd=f"{SANDBOX_PYTHON} -m unittest -v tests.test_{module}", log_parser="unittest")


def stdlib_sources(modules=STDLIB_MODULES) -> list[Source]:
    return [stdlib(m) for m in modules]


def directory(path: Path, test_cmd: str, log_parser: str) -> Source:
    path = Path(path)
    git_dir = path / ".git" if (path / ".git").exists() else path
    try:
        files = gitrepo.tree_files(git_dir, "HEAD")
    except gitrepo.GitError as e:
        raise SourceError(f"{path}: not a git repository with a commit ({e})") from e
    tests = sorted(p for p in files if TEST_PATH.search(p))
    mutable = sorted(p for p in files if p.endswith(".py") and p not in tests and Path(p).name != "setup.py")
    if not tests:
        raise SourceError(f"{path}: no test files found (test_*.py, *_test.py or under tests/)")
    if not mutable:
        raise SourceError(f"{path}: no Python files outside the tests to inject bugs into")
    name = re.sub(r"[^\w.-]", "_", path.resolve().name)
    return Source(repo=f"local/{name}", target=f"the {name} repository", files=files, mutable=mutable,
                  test_files=tests, test_cmd=test_cmd, log_parser=log_parser)
