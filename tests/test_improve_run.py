"""`crucible run`: stages as data in RUN/<stage>/, gates stopping with exit 3, finished stages skipped, a
killed run resumed, a changed recipe refused unless --force names the stage to redo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crucible.cli import main as cli
from crucible.improve.recipe import RecipeError, load_run_recipe
from crucible.sandbox import bwrap_path
from crucible.tasks import world

needs_sandbox = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is required (make setup installs it)")

RECIPE = """
[vars]
samples = "{samples}"

[[stage]]
name = "tasks"
kind = "world"
levels = "2"
split = "heldout"
count = 6

[[stage]]
name = "ref"
kind = "eval"
args = ["world"]
tasks = "{{tasks}}/tasks.jsonl"
reference = true
no_progress = true
gates = ["pass@1 >= 0.99"]

[[stage]]
name = "model"
kind = "eval"
args = ["world"]
tasks = "{{tasks}}/tasks.jsonl"
samples = "{{samples}}"
k = "1"
no_progress = true

[[stage]]
name = "cmp"
kind = "compare"
a = "{{ref}}"
b = "{{model}}"
gates = ["compare.delta < 0"]

[[stage]]
name = "final"
kind = "gate"
metrics = ["{{model}}"]
gates = ["pass@1 >= {threshold}"]
"""


def write_recipe(tmp_path, threshold=0.5, k="1") -> str:
    tasks = world.generate([2], split="heldout", count=6)
    samples = tmp_path / "samples.jsonl"  # the first two tasks solved, the others not
    samples.write_text("".join(json.dumps({"task_id": t.task_id, "completion": t.reference if i < 2 else "print(1)\n"})
                               + "\n" for i, t in enumerate(tasks)))
    recipe = tmp_path / "loop.toml"
    recipe.write_text(RECIPE.format(samples=samples, threshold=threshold).replace('k = "1"', f'k = "{k}"'))
    return str(recipe)


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "eval_results.jsonl").read_text().splitlines()]


@needs_sandbox
def test_a_failed_gate_stops_the_run_with_exit_3_and_says_by_how_much(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli(["run", write_recipe(tmp_path), "--out", str(run)]) == 3
    err = capsys.readouterr().err
    assert "stage final: gate 'pass@1 >= 0.5' FAILED: pass@1 = 0.3333 (0.1667 short)" in err
    assert [r["stage"] for r in rows(run)] == ["tasks", "ref", "model", "cmp", "final"]
    assert rows(run)[3]["metrics"]["compare.delta"] == pytest.approx(-4 / 6)
    assert rows(run)[1]["gates"][0]["passed"] is True
    assert (run / "tasks" / "tasks.jsonl").is_file()
    assert (run / "model" / "summary.json").is_file()


@needs_sandbox
def test_finished_stages_are_skipped_and_gates_checked_again(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli(["run", write_recipe(tmp_path), "--out", str(run)]) == 3
    results_before = (run / "model" / "results.jsonl").read_text()
    assert cli(["run", write_recipe(tmp_path), "--out", str(run)]) == 3  # still fails: nothing changed
    out = capsys.readouterr().out
    assert out.count("finished earlier, skipped") == 5
    assert cli(["run", write_recipe(tmp_path, threshold=0.3), "--out", str(run)]) == 0  # a gate is no redo
    assert (run / "model" / "results.jsonl").read_text() == results_before
    assert len(rows(run)) == 5


@needs_sandbox
def test_a_changed_stage_is_refused_unless_forced(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli(["run", write_recipe(tmp_path, threshold=0.3), "--out", str(run)]) == 0
    changed = write_recipe(tmp_path, threshold=0.3, k="1,2")
    assert cli(["run", changed, "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "stage 'model' changed since it ran in this RUN (k)" in err
    assert "--force model" in err
    assert cli(["run", changed, "--out", str(run), "--force", "cmp"]) == 2  # later than the change: refused
    assert cli(["run", changed, "--out", str(run), "--force", "model"]) == 0
    assert [r["stage"] for r in rows(run)] == ["tasks", "ref", "model", "cmp", "final", "model", "cmp", "final"]
    assert sorted(p.name.split("-")[0] for p in (run / ".replaced").iterdir()) == ["cmp", "final", "model"]
    assert (run / "model" / "summary.json").is_file()


def kill_once_finished(recipe: str, run: Path, stage: str) -> None:
    """Start `crucible run` in a process and SIGKILL it as soon as `stage` is recorded finished."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "crucible", "run", recipe, "--out", str(run)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        state = run / "run.json"
        if state.exists() and stage in json.loads(state.read_text() or "{}").get("stages", {}):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@needs_sandbox
def test_a_killed_run_resumes_and_skips_finished_stages(tmp_path):
    recipe = write_recipe(tmp_path, threshold=0.3)
    run = tmp_path / "run"
    kill_once_finished(recipe, run, "tasks")
    finished_before = set(json.loads((run / "run.json").read_text())["stages"])
    assert "tasks" in finished_before
    assert cli(["run", recipe, "--out", str(run)]) == 0
    assert [r["stage"] for r in rows(run)] == ["tasks", "ref", "model", "cmp", "final"]
    summary = json.loads((run / "ref" / "summary.json").read_text())
    assert summary["n_samples"] == 6
    assert summary["status_counts"] == {"pass": 6}


def test_recipe_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[stage]]\nname = "a"\nkind = "world"\n\n[[stage]]\nname = "b"\nkind = "eval"\n'
                   'tasks = "{nowhere}/t.jsonl"\n')
    with pytest.raises(RecipeError, match=rf"{bad}:5: stage 'b': {{nowhere}} is neither"):
        load_run_recipe(bad, {"world", "eval"})
    bad.write_text('[[stage]]\nname = "a"\nkind = "sft"\n')
    with pytest.raises(RecipeError, match=rf"{bad}:1: stage 'a': kind 'sft' is not one of"):
        load_run_recipe(bad, {"world", "eval"})
    bad.write_text('[[stage]]\nname = "a"\nkind = "world"\ngates = ["pass@1 >= lots"]\n')
    with pytest.raises(RecipeError, match="expected METRIC OP NUMBER"):
        load_run_recipe(bad, {"world", "eval"})


def test_bad_recipe_is_exit_2_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[stage]]\nname = "a"\nkind = "teleport"\n')
    assert cli(["run", str(bad), "--out", str(tmp_path / "run")]) == 2
    assert "kind 'teleport'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, takes", [(["eval", "world"], True), (["mine"], True), (["swe", "run"], True),
                                         (["swe", "grade"], True), (["swe", "build"], False), (["world"], False),
                                         (["sft"], False), (["compare"], False)])
def test_ray_goes_only_to_the_commands_that_take_it(argv, takes):
    from crucible.commands.run import takes_ray

    assert takes_ray(argv) is takes


def test_the_runner_adds_ray_once_and_keeps_a_stages_own():
    from crucible.commands.run import with_ray

    calls = []
    main = with_ray(lambda argv: calls.append(argv) or 0, "10.0.0.1:6379")
    main(["eval", "world", "--out", "o"])
    main(["world", "--out", "o"])
    main(["swe", "run", "--ray", "auto", "--out", "o"])
    assert calls[0] == ["eval", "world", "--out", "o", "--ray", "10.0.0.1:6379"]
    assert calls[1] == ["world", "--out", "o"]
    assert calls[2] == ["swe", "run", "--ray", "auto", "--out", "o"]


def test_where_a_stage_runs_is_not_part_of_its_fingerprint(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[[stage]]\nname = "a"\nkind = "eval"\nsamples = "s.jsonl"\n')
    local = load_run_recipe(recipe, {"eval"}).stages[0]
    recipe.write_text('[[stage]]\nname = "a"\nkind = "eval"\nsamples = "s.jsonl"\nray = "auto"\n')
    on_ray = load_run_recipe(recipe, {"eval"}).stages[0]
    recipe.write_text('[[stage]]\nname = "a"\nkind = "eval"\nsamples = "t.jsonl"\n')
    other = load_run_recipe(recipe, {"eval"}).stages[0]
    assert on_ray.fingerprint == local.fingerprint
    assert other.fingerprint != local.fingerprint  # the control: a real change still shows
