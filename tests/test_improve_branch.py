"""Recipes that branch on the curriculum: a curriculum stage decides, `{stage.key}` carries its decision
into later stages, `when` skips stages (recorded), fingerprints follow the resolved keys, a killed run
resumes. Fast stages only: world tasks, reference and scripted samples graded in the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crucible.cli import main as cli
from crucible.improve import run as improve_run
from crucible.improve.recipe import RecipeError, load_run_recipe
from crucible.improve.values import DECISION_KEYS, read_value
from crucible.report import run_files
from crucible.sandbox import bwrap_path
from crucible.tasks import world
from test_improve_run import kill_once_finished

needs_sandbox = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is required (make setup installs it)")
KINDS = {"world", "eval", "curriculum", "compare", "gate"}

# Round 1 passes everything at level 1 (reference programs) -> harder; round 2 at the level cur1 chose
# solves one task of three -> mine; of the two branches after it, only the mine one runs.
STAGES = {
    "tasks1": 'kind = "world"\nlevels = "1"\nsplit = "train"\ncount = 3',
    "eval1": 'kind = "eval"\nargs = ["world"]\ntasks = "{tasks1}/tasks.jsonl"\nreference = true\nno_progress = true',
    "cur1": 'kind = "curriculum"\nresults = "{eval1}"\nlevel = 1\nhighest = 3',
    "tasks2": 'kind = "world"\nlevels = "{cur1.next_level}"\nsplit = "train"\ncount = 3',
    "eval2": ('kind = "eval"\nargs = ["world"]\ntasks = "{tasks2}/tasks.jsonl"\nsamples = "{samples}"\n'
              'no_progress = true'),
    "cur2": 'kind = "curriculum"\nresults = "{eval2}"\nlevel = "{cur1.next_level}"\nhighest = 3',
    "mine2": 'kind = "world"\nwhen = "cur2.action == \'mine\'"\nlevels = "{cur2.level}"\nsplit = "train"\ncount = 2',
    "harder2": 'kind = "world"\nwhen = "cur2.action == \'harder\'"\nlevels = "{cur2.next_level}"\nsplit = "train"',
}


def write_recipe(tmp_path: Path, names=tuple(STAGES), extra: str = "") -> str:
    samples = tmp_path / "samples.jsonl"  # for the level-2 tasks `crucible world --count 3` draws: one solved
    tasks = world.generate([2], split="train", count=3)
    samples.write_text("".join(json.dumps({"task_id": t.task_id, "completion": t.reference if i == 0 else "print(1)\n"})
                               + "\n" for i, t in enumerate(tasks)))
    recipe = tmp_path / "branch.toml"
    recipe.write_text(f'[vars]\nsamples = "{samples}"\n\n'
                      + "".join(f'[[stage]]\nname = "{n}"\n{STAGES[n]}\n\n' for n in names) + extra)
    return str(recipe)


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def branched(tmp_path_factory) -> Path:
    """One whole run of the branching recipe (read-only for the tests that use it)."""
    tmp = tmp_path_factory.mktemp("branched")
    run = tmp / "run"
    assert cli(["run", write_recipe(tmp), "--out", str(run)]) == 0
    return run


@needs_sandbox
def test_all_passing_at_level_1_sends_the_next_world_stage_to_level_2(branched):
    decision = json.loads((branched / "cur1" / "decision.json").read_text())
    assert decision["action"] == "harder"
    assert decision["next_level"] == 2
    assert decision["pass_rate"] == 1.0
    assert {t.level for t in world.load_tasks(branched / "tasks2" / "tasks.jsonl")} == {2}
    assert json.loads((branched / "cur2" / "decision.json").read_text())["level"] == 2


@needs_sandbox
def test_each_rounds_choice_is_appended_to_the_curriculum_log(branched):
    rounds = jsonl(branched / improve_run.CURRICULUM_LOG)
    assert [r["stage"] for r in rounds] == ["cur1", "cur2"]
    assert [r["action"] for r in rounds] == ["harder", "mine"]
    assert rounds[1]["tasks"] == {"all": 1, "some": 0, "none": 2}
    assert rounds[1]["ci"][0] < 1 / 3 < rounds[1]["ci"][1]


@needs_sandbox
def test_a_false_condition_skips_the_stage_and_records_why(branched):
    state = json.loads((branched / "run.json").read_text())["stages"]
    assert state["harder2"]["skipped"] == "cur2.action == 'harder' (cur2.action = 'mine') is false"
    assert "skipped" not in state["mine2"]
    assert not (branched / "harder2").exists()
    assert {t.level for t in world.load_tasks(branched / "mine2" / "tasks.jsonl")} == {2}
    rows = {r["stage"]: r for r in jsonl(branched / improve_run.EVAL_RESULTS)}
    assert rows["harder2"]["skipped"].endswith("is false")
    assert rows["cur2"]["metrics"]["pass_rate"] == pytest.approx(1 / 3)


@needs_sandbox
def test_the_run_report_shows_each_round_and_the_skipped_stage(branched):
    page = run_files.write_run_report(branched).read_text()
    assert "<h2>Curriculum</h2>" in page
    assert "<td>1</td><td>cur1</td><td>1</td><td>3</td><td>100.0% [" in page
    assert "<td>harder</td><td>2</td>" in page
    assert "<td>2</td><td>cur2</td><td>2</td><td>3</td><td>33.3% [" in page
    assert "skipped: cur2.action == &#x27;harder&#x27; (cur2.action = &#x27;mine&#x27;) is false" in page
    assert f"{len(STAGES)} finished stages (1 skipped)" in page


@needs_sandbox
def test_a_stage_that_refers_to_a_skipped_stage_fails_naming_it(tmp_path, capsys):
    recipe = write_recipe(tmp_path, extra='[[stage]]\nname = "after"\nkind = "eval"\nargs = ["world"]\n'
                                          'tasks = "{harder2}/tasks.jsonl"\nreference = true\n')
    assert cli(["run", recipe, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"{recipe}:" in err
    assert "stage 'after': refers to {harder2}, but stage 'harder2' was skipped" in err


def test_unknown_value_keys_are_refused_with_file_and_line(tmp_path):
    recipe = Path(write_recipe(tmp_path, names=("tasks1", "eval1", "cur1", "tasks2")))
    text = recipe.read_text()
    line = text.splitlines().index('name = "tasks2"')  # its [[stage]] header, 1-based
    recipe.write_text(text.replace("{cur1.next_level}", "{cur1.next_levle}"))
    with pytest.raises(RecipeError, match=rf"{recipe}:{line}: stage 'tasks2': .*has no 'next_levle'"):
        load_run_recipe(recipe, KINDS)
    recipe.write_text(text.replace("{cur1.next_level}", "{tasks1.level}"))
    with pytest.raises(RecipeError, match=rf"{recipe}:{line}: .*'tasks1' is a world stage, which has no values"):
        load_run_recipe(recipe, KINDS)
    recipe.write_text(text.replace("{cur1.next_level}", "{later.level}"))
    with pytest.raises(RecipeError, match="later.level does not name an earlier stage"):
        load_run_recipe(recipe, KINDS)
    recipe.write_text(text + 'when = "cur1.action = harder"\n')
    with pytest.raises(RecipeError, match=r"expected STAGE.KEY OP VALUE"):
        load_run_recipe(recipe, KINDS)
    recipe.write_text(text.replace("level = 1\n", ""))
    with pytest.raises(RecipeError, match="a curriculum stage takes 'results'"):
        load_run_recipe(recipe, KINDS)


@needs_sandbox
def test_every_decision_key_can_be_read_from_a_real_decision(branched):
    for key in DECISION_KEYS:
        assert read_value(branched / "cur1", "curriculum", key) is not None


@needs_sandbox
def test_a_killed_run_resumes_and_records_each_round_once(tmp_path):
    recipe = write_recipe(tmp_path)
    run = tmp_path / "run"
    kill_once_finished(recipe, run, "cur1")
    assert "cur1" in json.loads((run / "run.json").read_text())["stages"]
    logs = []
    assert improve_run.run_recipe(load_run_recipe(recipe, KINDS), run, cli, log=logs.append) is not None
    assert "[run] cur1: finished earlier, skipped" in logs
    assert [r["stage"] for r in jsonl(run / improve_run.CURRICULUM_LOG)] == ["cur1", "cur2"]
    assert [r["stage"] for r in jsonl(run / improve_run.EVAL_RESULTS)] == list(STAGES)
    logs.clear()
    improve_run.run_recipe(load_run_recipe(recipe, KINDS), run, cli, log=logs.append)  # a plain resume: nothing redone
    assert sum("finished earlier, skipped" in line for line in logs) == len(STAGES) - 1
    assert "[run] harder2: skipped earlier: cur2.action == 'harder' (cur2.action = 'mine') is false" in logs


@needs_sandbox
def test_a_changed_upstream_decision_makes_the_downstream_stage_changed(tmp_path, capsys):
    recipe = write_recipe(tmp_path, names=("tasks1", "eval1", "cur1", "tasks2"))
    run = tmp_path / "run"
    assert cli(["run", recipe, "--out", str(run)]) == 0
    decision = run / "cur1" / "decision.json"
    decision.write_text(decision.read_text().replace('"next_level": 2', '"next_level": 3'))
    assert cli(["run", recipe, "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "stage 'tasks2' changed since it ran in this RUN (levels)" in err
    assert {t.level for t in world.load_tasks(run / "tasks2" / "tasks.jsonl")} == {2}  # refused: untouched
    assert cli(["run", recipe, "--out", str(run), "--force", "tasks2"]) == 0
    assert {t.level for t in world.load_tasks(run / "tasks2" / "tasks.jsonl")} == {3}


def test_a_changed_var_makes_its_stage_changed(tmp_path, capsys):
    recipe = tmp_path / "vars.toml"
    stage = '[[stage]]\nname = "tasks"\nkind = "world"\nlevels = "{level}"\nsplit = "train"\ncount = 2\n'
    recipe.write_text('[vars]\nlevel = "1"\n\n' + stage)
    run = tmp_path / "run"
    assert cli(["run", str(recipe), "--out", str(run)]) == 0
    assert cli(["run", str(recipe), "--out", str(run)]) == 0  # unchanged: skipped
    recipe.write_text('[vars]\nlevel = "2"\n\n' + stage)
    assert cli(["run", str(recipe), "--out", str(run)]) == 2
    assert "stage 'tasks' changed since it ran in this RUN (levels)" in capsys.readouterr().err


def test_a_condition_on_a_number_compares_numbers_and_strings_only_for_equality(tmp_path):
    from crucible.improve.values import StageValueError, parse_condition

    assert parse_condition("cur1.pass_rate >= 0.5").holds(0.5) is True
    assert parse_condition("cur1.pass_rate > 0.5").holds(0.5) is False
    assert parse_condition('cur1.action != "mine"').holds("harder") is True
    with pytest.raises(StageValueError, match="a string compares only with == or !="):
        parse_condition("cur1.action > 'mine'")
    with pytest.raises(StageValueError, match="not a number"):
        parse_condition("cur1.action > 1").holds("mine")


def test_the_shipped_curriculum_recipe_is_valid():
    from crucible.commands.run import stage_kinds
    from crucible.train.config import recipe_file

    recipe = load_run_recipe(recipe_file("curriculum"), stage_kinds())
    kinds = {s.name: s.kind for s in recipe.stages}
    assert kinds["cur1"] == kinds["cur2"] == "curriculum"
    assert dict(recipe.stages[recipe.names().index("pool2")].flags)["levels"] == "{cur1.next_level}"
    assert all(s.when == "cur2.action == 'mine'" for s in recipe.stages if s.name in ("sft2", "eval_sft2", "gain"))


@pytest.fixture(scope="module")
def level2_model(tmp_path_factory):
    """A tiny HF model that has memorised the reference programs of the level-2 pool the recipe draws."""
    from crucible.testing import build_tiny_hf_model

    pool = world.generate([2], split="train", count=4)
    return build_tiny_hf_model(tmp_path_factory.mktemp("model") / "m",
                               [(t.prompt, t.reference + "```\n") for t in pool], steps=300)


@needs_sandbox
def test_the_shipped_recipe_runs_on_a_tiny_budget(level2_model, tmp_path):
    from crucible.commands.run import stage_kinds
    from crucible.train.config import recipe_file

    text = recipe_file("curriculum").read_text()
    small = {"native:runs/mission/base": f"hf:{level2_model}", "count = 40": "count = 4", "count = 60": "count = 4",
             "n = 4": "n = 1", "temperature = 1.0": "temperature = 0\nmax_tokens = 80"}
    for big, tiny in small.items():
        assert big in text
        text = text.replace(big, tiny)
    recipe = tmp_path / "curriculum.toml"
    recipe.write_text(text)
    run = tmp_path / "run"
    improve_run.run_recipe(load_run_recipe(recipe, stage_kinds()), run, cli, log=lambda line: None)
    rounds = jsonl(run / improve_run.CURRICULUM_LOG)
    assert [(r["level"], r["action"]) for r in rounds] == [(2, "harder"), (3, "easier")]
    assert {t.level for t in world.load_tasks(run / "pool2" / "tasks.jsonl")} == {3}
    assert json.loads((run / "mine1" / "samples.jsonl").read_text().splitlines()[0])["difficulty"] == "level 2"
    state = json.loads((run / "run.json").read_text())["stages"]
    assert [name for name, entry in state.items() if entry.get("skipped")] == ["sft2", "eval_sft2", "gain"]
    assert json.loads((run / "eval_base" / "summary.json").read_text())["n_samples"] == 4
    page = (run / "report.html").read_text()
    assert "<h2>Curriculum</h2>" in page
    assert "stage eval_sft2" not in page  # a skipped eval is listed as skipped, not noted as lacking results


@needs_sandbox
def test_values_of_other_kinds_are_checked_when_read(tmp_path, capsys):
    more = '[[stage]]\nname = "more"\nkind = "world"\nlevels = "1"\nsplit = "train"\ncount = "{eval1.KEY}"\n'
    recipe = Path(write_recipe(tmp_path, names=("tasks1", "eval1"), extra=more.replace("KEY", "n_samples")))
    run = tmp_path / "run"
    assert cli(["run", str(recipe), "--out", str(run)]) == 0
    assert len(world.load_tasks(run / "more" / "tasks.jsonl")) == 3  # eval1 graded 3 samples
    recipe.write_text(recipe.read_text().replace("{eval1.n_samples}", "{eval1.n_sample}"))
    line = recipe.read_text().splitlines().index('name = "more"')
    assert cli(["run", str(recipe), "--out", str(tmp_path / "run2")]) == 2
    err = capsys.readouterr().err
    assert f"{recipe}:{line}: stage 'more': {tmp_path / 'run2' / 'eval1' / 'summary.json'} has no 'n_sample'" in err
    assert "n_samples" in err.split("keys:")[1]
