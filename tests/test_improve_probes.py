"""Probes: each check, probe files (TOML, JSONL) with file:line errors, per-category scores with Wilson
intervals, and `crucible probes` on given replies and on a real (tiny) model."""

from __future__ import annotations

import json

import pytest

from crucible.cli import main as cli
from crucible.improve.probes import Probe, ProbeError, check_passes, failed_checks, load_probes, score
from crucible.metrics import wilson_interval

TOML = '''
[[probe]]
id = "sum"
category = "math"
prompt = "What is 2+2?"
checks = [{contains = "4"}, {not_contains = "5"}]

[[probe]]
id = "think"
category = "format"
prompt = "Think, then answer: what is 2+2?"
checks = [{closes_think = true}, {answer_outside_think = true}]

[[probe]]
id = "tool"
category = "format"
prompt = "Use the python tool to compute 2**100."
checks = [{calls_tool = "python"}]
'''


@pytest.mark.parametrize("kind, value, reply, expected", [
    ("contains", "4", "2+2 is 4.", True),
    ("contains", "4", "2+2 is four.", False),
    ("not_contains", "Answer:", "Answer: 4", False),
    ("regex", r"^```python$", "Here:\n```python\nprint(1)\n```", True),
    ("not_regex", r"\bTODO\b", "done", True),
    ("calls_tool", "python", "<|python_start|>print(2**100)<|python_end|>", True),
    ("calls_tool", "search", '<tool_call>{"name": "search", "arguments": {}}</tool_call>', True),
    ("calls_tool", "python", '<tool_call>{"name": "search"}</tool_call> python', False),
    ("closes_think", True, "<think>hmm</think>4", True),
    ("closes_think", True, "<think>hmm 4", False),
    ("closes_think", True, "4</think>", False),
    ("answer_outside_think", True, "<think>it is 4</think>", False),
    ("answer_outside_think", True, "<think>sum</think>It is 4.", True),
])
def test_each_check(kind, value, reply, expected):
    assert check_passes(kind, value, reply) is expected


def test_a_probe_passes_only_when_every_check_does():
    probe = Probe("p", "q", "c", (("contains", "4"), ("not_contains", "5")))
    assert failed_checks(probe, "4") == []
    assert failed_checks(probe, "4 or 5") == ["not_contains='5'"]


def test_toml_and_jsonl_probe_files_load_the_same_probes(tmp_path):
    toml = tmp_path / "p.toml"
    toml.write_text(TOML)
    probes = load_probes(toml)
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text("".join(json.dumps({"id": p.id, "category": p.category, "prompt": p.prompt,
                                         "checks": [{k: v} for k, v in p.checks]}) + "\n" for p in probes))
    assert load_probes(jsonl) == probes
    assert [p.category for p in probes] == ["math", "format", "format"]


def test_bad_probe_names_file_and_line(tmp_path):
    toml = tmp_path / "p.toml"
    toml.write_text(TOML.replace('{calls_tool = "python"}', '{calls_a_friend = "python"}'))
    with pytest.raises(ProbeError, match=rf"{toml}:14: unknown check 'calls_a_friend'"):
        load_probes(toml)
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"id": "a", "prompt": "x", "checks": [{"contains": "y"}]}\n{"id": "b", "prompt": "x"}\n')
    with pytest.raises(ProbeError, match=rf"{jsonl}:2: 'checks' must be a non-empty list"):
        load_probes(jsonl)


def test_wilson_interval_matches_its_closed_form_at_the_edge():
    z = 1.959963984540054
    lo, hi = wilson_interval(10, 10)
    assert lo == pytest.approx(10 / (10 + z * z))
    assert hi == 1.0


def test_scores_per_category_and_total_carry_intervals():
    rows = [{"category": "math", "passed": True}, {"category": "format", "passed": False},
            {"category": "format", "passed": True}]
    s = score(rows)
    assert s["categories"]["format"]["score"] == 0.5
    assert s["total"]["passed"] == 2
    assert s["total"]["ci"] == list(wilson_interval(2, 3))


def test_probes_command_scores_given_replies_and_resumes(tmp_path, capsys):
    probes = tmp_path / "p.toml"
    probes.write_text(TOML)
    replies = tmp_path / "r.jsonl"
    replies.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "sum", "reply": "It is 4."}, {"id": "think", "reply": "<think>easy</think>4"},
        {"id": "tool", "reply": "2**100 is big"}]))
    out = tmp_path / "out"
    assert cli(["probes", "--replies", str(replies), "--probes", str(probes), "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "| format | 1/2 | 50.0% [" in text
    summary = json.loads((out / "probes.json").read_text())
    assert summary["total"]["score"] == pytest.approx(2 / 3)
    assert cli(["probes", "--replies", str(replies), "--probes", str(probes), "--out", str(out), "--no-progress"]) == 0
    assert len((out / "probes.jsonl").read_text().splitlines()) == 3
    assert cli(["probes", "--replies", str(replies), "--probes", str(probes), "--out", str(out), "--seed", "1",
                "--no-progress"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_probes_command_asks_a_real_model(tmp_path, capsys):
    from crucible.testing import demo_model

    probes = tmp_path / "p.jsonl"
    probes.write_text("".join(json.dumps(p) + "\n" for p in [
        {"id": "sum", "category": "math", "prompt": "What is 2+2?", "checks": [{"contains": "4"}]},
        {"id": "no-think", "category": "format", "prompt": "What is 2+2?", "checks": [{"contains": "<think>"}]}]))
    out = tmp_path / "out"
    assert cli(["probes", "--model", f"hf:{demo_model()}", "--probes", str(probes), "--out", str(out),
                "--max-tokens", "16", "--no-progress"]) == 0
    rows = {r["id"]: r for r in map(json.loads, (out / "probes.jsonl").read_text().splitlines())}
    assert rows["sum"]["reply"].startswith("2+2 is 4.")
    assert rows["sum"]["passed"] is True
    assert rows["no-think"]["passed"] is False
    capsys.readouterr()
