"""`crucible report RUN`: one HTML page (plus PNGs) for a whole `crucible run` directory.

Most tests build a run directory by hand with the writers' own functions where they are functions
(compare_rows, vote_summary, posttrain's interval) and the writers' field names where they are inline
(mine.json, the training loop's log records); one test renders a real run made by `crucible run`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from crucible.cli import main as cli
from crucible.improve import run as improve_run
from crucible.improve.compare import compare_rows
from crucible.improve.vote import vote_summary
from crucible.metrics import wilson_interval
from crucible.posttrain.sft import validation_record
from crucible.report import run_files
from crucible.report.run_page import render_page
from crucible.sandbox import bwrap_path
from test_improve_run import write_recipe

needs_sandbox = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is required (make setup installs it)")
HOSTILE = "evil/<script>alert(1)</script>"


def results(passes: list[list[bool]], language="python") -> list[dict]:
    return [{"task_id": f"t{t}", "language": language, "sample_index": i, "status": "pass" if ok else "wrong_answer",
             "passed": ok} for t, samples in enumerate(passes) for i, ok in enumerate(samples)]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


BASE = results([[True]] * 3 + [[False]] * 7)                  # 10 tasks, one sample: 3 solved
SFT = results([[True]] * 8 + [[False]] * 2)                   # the real round: 8 solved, all of base's 3 too
CONTROL = results([[True]] * 2 + [[False]] * 8)               # the negative control: 2 solved
VOTED = results([[True, True, False]] * 4 + [[False, True, False]] * 2 + [[False] * 3] * 4)
MINE = {"suite": "world", "model": "native:base", "n": 4, "temperature": 1.0, "tasks": 10, "samples": 40,
        "passing_samples": 9, "tasks_with_a_pass": 5, "pass@1": 0.225, "pass@1_ci": [0.1, 0.35],
        "distinct_passing_kept": 8, "contaminated": 1, "mined": 7, "pairs": 12, "control": 6}


def row(stage, kind, metrics=None, gates=()):
    return {"stage": stage, "kind": kind, "finished": f"2026-01-01T00:00:0{len(stage) % 10}", "metrics": metrics or {},
            "gates": list(gates)}


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """pretrain, three evals, vote, mine, sft, grpo, a real and a control compare, a failed gate."""
    run = tmp_path / "loop"
    stages = {"pre": ("pretrain", []), "base": ("eval", []), "votes": ("vote", ["world", "{base3}"]),
              "base3": ("eval", []), "mine": ("mine", []), "sft": ("sft", []), "rl": ("grpo", []),
              "sft_eval": ("eval", []), "control_eval": ("eval", []), "cmp": ("compare", []),
              "cmp_control": ("compare", []), "final": ("gate", [])}
    write_json(run / "run.json", {"recipe": "loop.toml", "stages": {
        name: {"fingerprint": "0" * 16, "table": {"kind": kind, "args": args}, "finished": "2026-01-01T00:00:00"}
        for name, (kind, args) in stages.items()}})
    write_jsonl(run / "pre" / "log.jsonl", [
        {"event": "start", "step": 0, "params": 1000},
        *[{"event": "train", "step": s, "loss": 6.0 - 0.5 * s, "lr_mult": 1.0} for s in (1, 2, 3, 4)],
        {"event": "eval", "tag": "periodic", "step": 2, "loss": 5.1, "bpb": 2.5, "bpb_ci95": 0.25},
        {"event": "eval", "tag": "final (raw weights)", "step": 4, "loss": 4.1, "bpb": 1.75, "bpb_ci95": 0.125}])
    write_jsonl(run / "base" / "results.jsonl", BASE)
    write_jsonl(run / "base3" / "results.jsonl", VOTED)
    votes = [{"task_id": f"t{t}", "language": "python", "n": 3, "submitted": 0, "cluster": 2, "passed": t < 4}
             for t in range(10)]
    write_json(run / "votes" / "vote.json", {**vote_summary(votes, VOTED), "tasks": votes})
    write_json(run / "mine" / "mine.json", MINE)
    write_jsonl(run / "mine" / "contamination.jsonl", [
        {"task_id": HOSTILE, "language": "python", "sample_index": 0, "passed": True,
         "matches": [{"suite": "humaneval", "task_id": "HumanEval/23", "kind": "solution"}]}])
    write_jsonl(run / "sft" / "log.jsonl", [
        *[{"event": "train", "step": s, "loss": 3.0 / s} for s in (1, 2, 3)],
        {"event": "eval", "tag": "final (raw weights)", "step": 3, **validation_record([1.25, 1.5, 1.75])}])
    write_jsonl(run / "rl" / "log.jsonl", [
        {"event": "train", "step": s, "reward_mean": 0.25 * s, "reward_ci": [0.25 * s - 0.1, 0.25 * s + 0.1]}
        for s in (1, 2)])
    write_jsonl(run / "sft_eval" / "results.jsonl", SFT)
    write_jsonl(run / "control_eval" / "results.jsonl", CONTROL)
    write_json(run / "cmp" / "compare.json", compare_rows(BASE, SFT))
    write_json(run / "cmp_control" / "compare.json", compare_rows(BASE, CONTROL))
    failed = {"gate": "pass@1 >= 0.9", "metric": "pass@1", "value": 0.8, "threshold": 0.9, "passed": False,
              "margin": 0.8 - 0.9}
    write_jsonl(run / "eval_results.jsonl", [row(name, kind) for name, (kind, _) in stages.items() if name != "final"]
                + [row("final", "gate", {"pass@1": 0.8, "pass@1.lo": 0.5, "pass@1.hi": 1.0}, [failed]),
                   row("pre", "pretrain", {"val_bpb": 1.75, "val_bpb_ci95": 0.125})])  # pre redone by --force
    return run


def page_text(run: Path) -> str:
    """The page without drawing its figures (those are tested once: drawing is the slow part)."""
    return render_page(run_files.load_run(run), {})


def test_the_page_shows_each_section_with_its_intervals(run_dir):
    page = page_text(run_dir)
    real = compare_rows(BASE, SFT)
    assert f"{100 * real['delta']:+.1f} [{100 * real['ci'][0]:+.1f}, {100 * real['ci'][1]:+.1f}] points" in page
    assert f"<td>{real['p_value']:.4g}</td>" in page
    assert real["p_value"] == pytest.approx(2 / 2 ** 5)  # McNemar: 5 tasks won, none lost
    control = compare_rows(BASE, CONTROL)
    assert f"{100 * control['delta']:+.1f} [{100 * control['ci'][0]:+.1f}, {100 * control['ci'][1]:+.1f}]" in page
    lo, hi = wilson_interval(7, 40)
    assert f"<td>6</td><td>{100 * 7 / 40:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]</td>" in page  # control, yield
    assert "<td>mine</td><td>40</td><td>9</td><td>5 / 10</td><td>22.5% [10.0, 35.0]</td>" in page
    assert "<td>votes</td><td>10</td><td>3</td>" in page
    assert "vote@N [95%]" in page


def test_pass_at_k_and_training_curves_carry_intervals(run_dir):
    page = page_text(run_dir)
    assert "<td>base</td><td>python</td><td>10</td><td>1</td><td>30.0% [" in page
    assert "<td>base3</td><td>python</td><td>10</td><td>3</td>" in page
    assert "<td>pre</td><td>val bpb</td><td>4</td><td>1.75 [1.625, 1.875]</td>" in page
    assert "<td>sft</td><td>val loss</td><td>3</td><td>1.5 [" in page
    assert "<td>rl</td><td>mean reward</td><td>2</td><td>0.5 [0.4, 0.6]</td>" in page


def test_a_redone_stage_shows_its_latest_row_in_finish_order(run_dir):
    stages = [s["stage"] for s in run_files.load_run(run_dir)["stages"]]
    assert stages[-2:] == ["final", "pre"]
    assert stages.count("pre") == 1
    page = page_text(run_dir)
    assert "(finished 2×)" in page
    assert "val_bpb = 1.75 ± 0.125" in page


def test_a_failed_gate_is_shown_with_its_shortfall(run_dir):
    page = page_text(run_dir)
    assert '<span class="fail">FAIL</span> pass@1 &gt;= 0.9 (pass@1 = 0.8, 0.1 short)' in page
    assert "pass@1 = 0.8 [0.5, 1]" in page


def test_every_figure_is_a_non_empty_png_beside_the_page(run_dir):
    page = run_files.write_run_report(run_dir).read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(sources) == sorted(f"report/run-{k}.png" for k in
                                     ("passk", "pass1", "mine", "compare", "vote", "pretrain", "sft", "grpo"))
    for src in sources:
        assert (run_dir / src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_text_from_model_output_is_escaped(run_dir):
    write_jsonl(run_dir / "base" / "results.jsonl", results([[True], [False]], language="<script>x</script>"))
    page = page_text(run_dir)
    assert "<script>" not in page
    assert "evil/&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page


def test_a_run_without_eval_results_still_renders_from_run_json(run_dir):
    (run_dir / "eval_results.jsonl").unlink()
    page = page_text(run_dir)
    assert "eval_results.jsonl is missing" in page
    assert "<td>cmp_control</td><td>compare</td>" in page
    assert "(no row in eval_results.jsonl)" in page
    assert "<h2>Comparisons" in page


@pytest.fixture
def small_run(tmp_path) -> Path:
    """A run of one eval stage."""
    run = tmp_path / "small"
    write_json(run / "run.json", {"stages": {"base": {"fingerprint": "0", "table": {"kind": "eval", "args": []},
                                                      "finished": "x"}}})
    write_jsonl(run / "base" / "results.jsonl", BASE)
    write_jsonl(run / "eval_results.jsonl", [row("base", "eval", {"pass@1": 0.3, "pass@1.lo": 0.1, "pass@1.hi": 0.6})])
    return run


def test_sections_the_run_lacks_are_left_out(small_run):
    page = run_files.write_run_report(small_run).read_text()
    assert "<h2>Mining</h2>" not in page
    assert "<h2>Comparisons" not in page
    assert sorted(p.name for p in (small_run / "report").iterdir()) == ["run-pass1.png", "run-passk.png"]


def test_a_stage_still_running_is_noted_not_an_error(run_dir):
    (run_dir / "mine" / "mine.json").unlink()
    page = page_text(run_dir)
    assert "stage mine (mine): no mine.json" in page
    assert "<h2>Mining</h2>" not in page


def test_cli_prints_the_page_path_and_bad_files_exit_2(small_run, capsys):
    assert cli(["report", str(small_run)]) == 0
    assert capsys.readouterr().out.strip() == str(small_run / "report.html")
    results = small_run / "eval_results.jsonl"
    results.write_text('{"stage": "base"\n' + results.read_text())
    assert cli(["report", str(small_run)]) == 2
    assert f"{results}:1:" in capsys.readouterr().err
    (small_run / "run.json").write_text("[]")
    assert cli(["report", str(small_run)]) == 2
    assert f"{small_run / 'run.json'}:1: expected a JSON object" in capsys.readouterr().err


def test_file_names_agree_with_the_runner():
    assert run_files.RUN_STATE == improve_run.STATE
    assert run_files.EVAL_RESULTS == improve_run.EVAL_RESULTS


@needs_sandbox
def test_a_real_run_renders(tmp_path):
    run = tmp_path / "run"  # world tasks, a reference eval, a model solving two of six, compare, a failing gate
    assert cli(["run", write_recipe(tmp_path, threshold=0.5), "--out", str(run)]) == 3
    assert cli(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    compared = json.loads((run / "cmp" / "compare.json").read_text())
    assert compared["delta"] == pytest.approx(-4 / 6)
    assert f"<td>cmp</td><td>ref</td><td>model</td><td>6</td><td>100.0% [100.0, 100.0]</td>" in page
    assert f"<td>{compared['p_value']:.4g}</td>" in page
    assert '<span class="fail">FAIL</span> pass@1 &gt;= 0.5 (pass@1 = 0.3333, 0.1667 short)' in page
    assert (run / "report" / "run-passk.png").stat().st_size > 0
