"""Gates: a small grammar (no eval), margins, exit code 3 naming the gate and the shortfall, metrics read
from the files crucible writes."""

from __future__ import annotations

import json

import pytest

from crucible.cli import main as cli
from crucible.eval.summary import summarize
from crucible.improve.gates import GateError, GateFailed, enforce, evaluate, metrics_from, parse_gate


def test_gates_parse_into_metric_op_number():
    g = parse_gate("  pass@1   >=  0.30 ")
    assert (g.metric, g.op, g.threshold) == ("pass@1", ">=", 0.30)
    assert parse_gate("compare.p<5e-2").threshold == 0.05
    assert parse_gate("probes.tool-use == 1").metric == "probes.tool-use"


@pytest.mark.parametrize("text", ["pass@1 >= abc", "__import__('os').system('true') > 0", "pass@1 >= 0.3 and 1",
                                  "pass@1 => 0.3", "", ">= 0.3"])
def test_anything_else_is_refused(text):
    with pytest.raises(GateError, match="expected METRIC OP NUMBER"):
        parse_gate(text)


def test_margin_says_by_how_much():
    checks = evaluate([parse_gate("pass@1 >= 0.30"), parse_gate("bpb <= 1.5")], {"pass@1": 0.25, "bpb": 1.2})
    assert checks[0]["passed"] is False
    assert checks[0]["margin"] == pytest.approx(-0.05)
    assert checks[1]["passed"] is True
    assert checks[1]["margin"] == pytest.approx(0.3)


def test_a_failed_gate_raises_with_every_failure_named():
    with pytest.raises(GateFailed) as e:
        enforce([parse_gate("a > 1"), parse_gate("b < 1"), parse_gate("c == 2")], {"a": 0.5, "b": 0.5, "c": 3})
    assert "gate 'a > 1' FAILED: a = 0.5 (0.5 short)" in str(e.value)
    assert "'c == 2' FAILED" in str(e.value)
    assert "'b < 1'" not in str(e.value)


def test_unknown_metric_is_an_error_not_a_pass():
    with pytest.raises(GateError, match="no metric 'pass@10'"):
        evaluate([parse_gate("pass@10 >= 0.5")], {"pass@1": 0.9})


def summary_dir(tmp_path, passed: list[bool]):
    rows = [{"task_id": f"t{i}", "language": "python", "status": "pass" if p else "wrong_answer", "passed": p}
            for i, p in enumerate(passed)]
    out = tmp_path / "run"
    out.mkdir()
    (out / "summary.json").write_text(json.dumps(summarize("world", rows, [1])))
    return str(out)


def test_gate_command_exits_3_naming_the_gate_and_the_shortfall(tmp_path, capsys):
    run = summary_dir(tmp_path, [True, False, False, False])
    assert cli(["gate", "pass@1 >= 0.30", "--metrics", run]) == 3
    err = capsys.readouterr().err
    assert "gate 'pass@1 >= 0.30' FAILED: pass@1 = 0.25 (0.05 short)" in err


def test_gate_command_exits_0_when_every_gate_holds(tmp_path, capsys):
    run = summary_dir(tmp_path, [True, True, False, True])
    assert cli(["gate", "pass@1 >= 0.30", "pass@1.lo >= 0", "--metrics", run]) == 0
    assert "holds" in capsys.readouterr().out


def test_gate_command_unknown_metric_is_a_usage_error(tmp_path, capsys):
    run = summary_dir(tmp_path, [True])
    assert cli(["gate", "probes.total >= 0.9", "--metrics", run]) == 2
    assert "no metric 'probes.total'" in capsys.readouterr().err


def test_compare_output_feeds_gates(tmp_path, capsys):
    for name, passed in (("a", [False] * 10), ("b", [True] * 9 + [False])):
        d = tmp_path / name
        d.mkdir()
        d.joinpath("results.jsonl").write_text("".join(
            json.dumps({"task_id": f"t{i}", "language": "python", "status": "x", "passed": p}) + "\n"
            for i, p in enumerate(passed)))
    assert cli(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json"]) == 0
    metrics = metrics_from(json.loads(capsys.readouterr().out))
    assert metrics["compare.p"] == pytest.approx(2 / 2 ** 9)
    assert metrics["compare.delta"] == pytest.approx(0.9)
    assert metrics["compare.lo"] > 0


def test_plain_numbers_are_metrics_under_their_names():
    assert metrics_from({"bpb": 1.07, "step": 30, "done": True, "name": "x"}) == {"bpb": 1.07, "step": 30.0}
