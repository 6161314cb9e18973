"""`crucible report`: exact pass@k per language, failure modes, difficulty, PNGs, bad input."""

from __future__ import annotations

import json

import pytest

from crucible.cli import main as cli
from crucible.report.build import build_report, powers_of_two
from crucible.report.render import write_report


def rows_for(lang, task, statuses, difficulty=None):
    out = []
    for i, st in enumerate(statuses):
        r = {"task_id": task, "language": lang, "sample_index": i, "status": st, "passed": st == "pass"}
        if difficulty:
            r["difficulty"] = difficulty
        out.append(r)
    return out


@pytest.fixture
def results_dir(tmp_path):
    rows = (rows_for("rust", "a", ["pass", "compile_error", "compile_error", "wrong_answer"], "easy")
            + rows_for("rust", "b", ["timeout", "runtime_error", "sandbox_error", "wrong_answer"], "hard")
            + rows_for("python", "a", ["pass"] * 4, "easy") + rows_for("python", "b", ["pass", "memory"] * 2, "hard"))
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"torn":')
    return tmp_path


def test_powers_of_two_up_to_n():
    assert powers_of_two(1) == [1] and powers_of_two(10) == [1, 2, 4, 8, 10]
    assert powers_of_two(128) == [1, 2, 4, 8, 16, 32, 64, 128]


def test_report_numbers_are_exact(results_dir):
    rep = build_report([json.loads(l) for l in (results_dir / "results.jsonl").read_text().splitlines()[:-1]])
    rust, py = rep["languages"]["rust"], rep["languages"]["python"]
    assert rust["n"] == 4 and sorted(rust["k"]) == [1, 2, 4]
    # task a: n=4, c=1 -> pass@1 = .25, pass@2 = 1 - C(3,2)/C(4,2) = .5, pass@4 = 1; task b: 0
    assert rust["k"][1]["pass"] == pytest.approx(0.125)
    assert rust["k"][2]["pass"] == pytest.approx(0.25)
    assert rust["k"][4]["pass"] == pytest.approx(0.5)
    assert py["k"][1]["pass"] == pytest.approx(0.75) and py["k"][2]["pass"] == pytest.approx(1 - 0.5 * (1 / 6))
    lo, hi = rust["k"][1]["ci"]
    assert 0 <= lo <= 0.125 <= hi <= 0.25
    assert rust["failures"] == {"pass": 1, "wrong_answer": 2, "compile_error": 2, "runtime_error": 1, "timeout": 1,
                                "memory": 0, "output_limit": 0, "infra": 1}
    assert py["failures"]["memory"] == 2
    assert rep["difficulty"]["python"] == {"easy": 1.0, "hard": 0.5}


def test_report_command_writes_tables_and_plots(results_dir, capsys):
    assert cli(["report", str(results_dir)]) == 0
    text = capsys.readouterr().out
    assert "| rust | 2 | 4 | 12.5 [" in text and "compile_error" in text and "infra" in text
    for png in ("passk.png", "failures.png"):
        data = (results_dir / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    saved = json.loads((results_dir / "report.json").read_text())
    assert saved["languages"]["rust"]["failures"]["compile_error"] == 2


def test_report_on_missing_or_bad_results_is_a_usage_error(tmp_path, capsys):
    assert cli(["report", str(tmp_path)]) == 2
    assert "results.jsonl" in capsys.readouterr().err
    (tmp_path / "results.jsonl").write_text('{"task_id": "a", "language": "c", "status": "pass"}\nnot json\n')
    assert cli(["report", str(tmp_path)]) == 2
    assert "results.jsonl:2" in capsys.readouterr().err
    assert not (tmp_path / "report.md").exists()


def test_write_report_reads_a_real_eval_directory(tmp_path):
    from crucible.eval.pipeline import evaluate_samples
    from crucible.eval.suites import load_suite

    suite, references = load_suite("puzzles", language="python", limit=3)
    samples = references() + [
        {"task_id": "e01_multiples", "language": "python", "completion": "print(0)"}]
    samples[-1]["sample_index"] = 1
    samples[0]["sample_index"] = 0
    evaluate_samples(suite, samples[:1] + samples[-1:], tmp_path, ks=[1], workers=1, progress=False)
    rep = write_report(tmp_path)
    assert rep["languages"]["python"]["failures"]["wrong_answer"] == 1
    assert rep["languages"]["python"]["k"][1]["pass"] == pytest.approx(0.5)
    assert "# puzzles:" in (tmp_path / "report.md").read_text()
