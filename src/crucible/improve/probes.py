"""Probes: short prompts with checks on the reply, scored per category, so a training stage that
breaks the model's format (unclosed <think>, no answer, no tool call) is caught by a gate.

A probe file is TOML (`[[probe]]` tables) or JSONL (one probe a line). A probe has an `id`, a
`prompt` (sent as one user message), a `category` (default "general") and `checks`, a list of
one-key tables; the probe passes when every check does:

    contains = "text"            the reply contains the text
    not_contains = "text"        ... does not
    regex = "pattern"            re.search finds the pattern (multiline)
    not_regex = "pattern"        ... does not
    calls_tool = "python"        the reply calls the tool: crucible's <|python_start|> for "python",
                                 or a <tool_call>{"name": ...}</tool_call> block naming it
    closes_think = true          every <think> that opens is closed
    answer_outside_think = true  something is left once the thinking is removed

    [[probe]]
    id = "add"
    category = "format"
    prompt = "What is 2+2? Think first."
    checks = [{closes_think = true}, {answer_outside_think = true}, {contains = "4"}]

Scores: the share of probes passed per category and in total ("total"), each with a 95% Wilson
interval (`crucible.metrics.wilson_interval`: the bootstrap collapses at 0 % and 100 %). As gate
metrics they are `probes.total` and `probes.<category>`.

Not covered: multi-turn probes, checks on tool results, graded (non-binary) checks.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from crucible.metrics import wilson_interval
from crucible.sanitize import strip_thinking

CHECKS = ("contains", "not_contains", "regex", "not_regex", "calls_tool", "closes_think", "answer_outside_think")
TOOL_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)


class ProbeError(ValueError):
    """A bad probe file; the message names the file and line."""


@dataclass(frozen=True)
class Probe:
    id: str
    prompt: str
    category: str
    checks: tuple[tuple[str, object], ...]


def load_probes(path: str | Path) -> list[Probe]:
    path = Path(path)
    if not path.is_file():
        raise ProbeError(f"{path}: no such probe file")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        try:
            raw = tomllib.loads(text).get("probe", [])
        except tomllib.TOMLDecodeError as e:
            raise ProbeError(f"{path}: not valid TOML ({e})") from None
        headers = [i for i, line in enumerate(text.splitlines(), 1) if line.strip() == "[[probe]]"]
        located = [(f"{path}:{headers[i] if i < len(headers) else 1}", p) for i, p in enumerate(raw)]
    else:
        located = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    located.append((f"{path}:{lineno}", json.loads(line)))
                except json.JSONDecodeError as e:
                    raise ProbeError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
    probes, seen = [], set()
    for where, raw_probe in located:
        probe = parse_probe(raw_probe, where)
        if probe.id in seen:
            raise ProbeError(f"{where}: duplicate probe id {probe.id!r}")
        seen.add(probe.id)
        probes.append(probe)
    if not probes:
        raise ProbeError(f"{path}: no probes")
    return probes


def parse_probe(raw, where: str) -> Probe:
    if not isinstance(raw, dict):
        raise ProbeError(f"{where}: a probe must be a table/object")
    for key in ("id", "prompt"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ProbeError(f"{where}: {key!r} must be a non-empty string")
    category = raw.get("category", "general")
    if not isinstance(category, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", category) or category == "total":
        raise ProbeError(f"{where}: 'category' must be a word of letters, digits, _ or - (not 'total')")
    checks = raw.get("checks")
    if not isinstance(checks, list) or not checks:
        raise ProbeError(f"{where}: 'checks' must be a non-empty list")
    parsed = []
    for c in checks:
        if not isinstance(c, dict) or len(c) != 1:
            raise ProbeError(f"{where}: each check is a table with one key, one of {', '.join(CHECKS)}")
        (kind, value), = c.items()
        if kind not in CHECKS:
            raise ProbeError(f"{where}: unknown check {kind!r}; known: {', '.join(CHECKS)}")
        if kind in ("closes_think", "answer_outside_think"):
            if value is not True:
                raise ProbeError(f"{where}: {kind} takes the value true")
        elif not isinstance(value, str) or not value:
            raise ProbeError(f"{where}: {kind} takes a non-empty string")
        if kind in ("regex", "not_regex"):
            try:
                re.compile(value)
            except re.error as e:
                raise ProbeError(f"{where}: {kind} {value!r} is not a valid regex ({e})") from None
        parsed.append((kind, value))
    return Probe(raw["id"], raw["prompt"], category, tuple(parsed))


def calls_tool(reply: str, tool: str) -> bool:
    if tool == "python" and "<|python_start|>" in reply:
        return True
    for body in TOOL_CALL.findall(reply):
        try:
            call = json.loads(body)
        except json.JSONDecodeError:
            continue
        if isinstance(call, dict) and call.get("name") == tool:
            return True
    return False


def closes_think(reply: str) -> bool:
    depth = 0
    for m in re.finditer(r"</?think>", reply, re.IGNORECASE):
        depth += -1 if m.group().startswith("</") else 1
        if depth < 0:
            return False
    return depth == 0


def check_passes(kind: str, value, reply: str) -> bool:
    if kind == "contains":
        return value in reply
    if kind == "not_contains":
        return value not in reply
    if kind == "regex":
        return re.search(value, reply, re.MULTILINE) is not None
    if kind == "not_regex":
        return re.search(value, reply, re.MULTILINE) is None
    if kind == "calls_tool":
        return calls_tool(reply, value)
    if kind == "closes_think":
        return closes_think(reply)
    if kind == "answer_outside_think":
        return bool(strip_thinking(reply).strip())
    raise ValueError(f"unknown check {kind!r}")


def failed_checks(probe: Probe, reply: str) -> list[str]:
    """The checks the reply fails, as `kind=value` strings (empty: the probe passes)."""
    return [f"{kind}={value!r}" for kind, value in probe.checks if not check_passes(kind, value, reply)]


def score(results: list[dict]) -> dict:
    """{"total": {...}, "categories": {name: {...}}} with passed, n, score and a Wilson interval,
    from rows {"category", "passed"}."""
    def share(rows):
        passed = sum(bool(r["passed"]) for r in rows)
        return {"passed": passed, "n": len(rows), "score": passed / len(rows),
                "ci": list(wilson_interval(passed, len(rows)))}

    categories = sorted({r["category"] for r in results})
    return {"total": share(results),
            "categories": {c: share([r for r in results if r["category"] == c]) for c in categories}}


def gate_metrics(summary: dict) -> dict[str, float]:
    """probes.total and probes.<category>, for gates."""
    return {"probes.total": summary["total"]["score"],
            **{f"probes.{c}": s["score"] for c, s in summary["categories"].items()}}


def render(summary: dict) -> str:
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    lines = ["| category | passed | score (95% CI) |", "|---|---:|---:|"]
    for name, s in [*summary["categories"].items(), ("total", summary["total"])]:
        lines.append(f"| {name} | {s['passed']}/{s['n']} | {pct(s['score'])}% [{pct(s['ci'][0])}, {pct(s['ci'][1])}] |")
    return "\n".join(lines) + "\n"
