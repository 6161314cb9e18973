"""Per-test status from a test runner's output: unittest (-v) and pytest (-v or -rA).

Statuses are SWE-bench's: PASSED, FAILED, ERROR, SKIPPED, XFAIL. A test counts as passing when it
PASSED or XFAILed (SWE-bench's rule); a test missing from the output has not passed.

unittest -v prints `name (module.Class.name) ... ok` as each test ends (a docstring's first line
may sit between the name and the dots, and a test's own prints may split the line), then one
`FAIL: name (module.Class.name)` block per failure: those blocks are authoritative (a test with a
failing subTest ends without "ok"). pytest prints `path::test STATUS` with -v and
`STATUS path::test` in the -rA short summary; both are read, the summary winning (it names skipped
tests by file and line only: use -v -rA).

Test ids: unittest's dotted `module.Class.name` (the id `python -m unittest ID` runs), pytest's
node id `path::Class::test[param]`.

Not covered: other runners (nose, Django's runner, tox output around them), and unittest output
without -v (only failures are named there; use -v in the instance's test command).
"""

from __future__ import annotations

import re

PASSED, FAILED, ERROR, SKIPPED, XFAIL = "PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL"
PASSING = (PASSED, XFAIL)

_UNITTEST_RESULT = {"ok": PASSED, "FAIL": FAILED, "ERROR": ERROR, "expected failure": XFAIL,
                    "unexpected success": FAILED}
_UNITTEST_START = re.compile(r"^(?P<name>\w+) \((?P<where>[\w.]+)\)")
_UNITTEST_END = re.compile(r"(?:^|\s)(?P<result>ok|FAIL|ERROR|skipped|expected failure|unexpected success)(?: '.*')?\s*$")
_UNITTEST_BLOCK = re.compile(r"^(?P<result>FAIL|ERROR): (?P<name>\w+) \((?P<where>[\w.]+)\)", re.M)
_PYTEST_VERBOSE = re.compile(r"^(?P<id>\S+::\S+) (?P<result>PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", re.M)
_PYTEST_SUMMARY = re.compile(r"^(?P<result>PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (?P<id>\S+::\S+)", re.M)
_PYTEST_STATUS = {"PASSED": PASSED, "FAILED": FAILED, "ERROR": ERROR, "SKIPPED": SKIPPED, "XFAIL": XFAIL,
                  "XPASS": FAILED}


def _unittest_id(name: str, where: str) -> str:
    """3.11+ prints (module.Class.name); older Pythons print (module.Class)."""
    return where if where.endswith("." + name) else f"{where}.{name}"


def parse_unittest(log: str) -> dict[str, str]:
    status, pending = {}, None
    for line in log.splitlines():
        start = _UNITTEST_START.match(line)
        if start:
            pending = _unittest_id(start["name"], start["where"])
        end = _UNITTEST_END.search(line) if pending else None
        if end:
            result = end["result"]
            status[pending] = SKIPPED if result == "skipped" else _UNITTEST_RESULT[result]
            pending = None
    for m in _UNITTEST_BLOCK.finditer(log):
        status[_unittest_id(m["name"], m["where"])] = FAILED if m["result"] == "FAIL" else ERROR
    return status


def parse_pytest(log: str) -> dict[str, str]:
    status = {m["id"]: _PYTEST_STATUS[m["result"]] for m in _PYTEST_VERBOSE.finditer(log)}
    status.update({m["id"]: _PYTEST_STATUS[m["result"]] for m in _PYTEST_SUMMARY.finditer(log)})
    return status


PARSERS = {"unittest": parse_unittest, "pytest": parse_pytest}


def parse(log: str, parser: str) -> dict[str, str]:
    return PARSERS[parser](log)


def failure_blocks(log: str) -> dict[str, str]:
    """unittest's FAIL/ERROR blocks (header, traceback, message) by test id, for problem statements."""
    out = {}
    chunks = re.split(r"^={50,}\n", log, flags=re.M)
    for chunk in chunks[1:]:
        m = _UNITTEST_BLOCK.match(chunk)
        if m:
            body = re.split(r"^-{50,}\n", chunk, maxsplit=1, flags=re.M)
            text = body[1] if len(body) > 1 else chunk
            out[_unittest_id(m["name"], m["where"])] = re.split(r"^-{50,}\n|^Ran \d+ tests?", text, flags=re.M)[0]
    for m in re.finditer(r"^_{3,} (?P<title>.+?) _{3,}\n(?P<body>.*?)(?=^_{3,} |^={3,})", log, re.M | re.S):
        out.setdefault(m["title"], m["body"])  # pytest: "____ test_name ____" sections
    return out
