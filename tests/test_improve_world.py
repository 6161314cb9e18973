"""The task world: deterministic, disjoint splits, references that pass in the sandbox, programs that do
not solve the task fail, and the many-inputs runner behind it."""

from __future__ import annotations

import json

import pytest

from crucible.cli import main as cli
from crucible.eval.pipeline import evaluate_samples
from crucible.eval.suites import load_suite
from crucible.grade.world import WorldSuite
from crucible.languages.inputs import run_on_inputs
from crucible.sandbox import Limits, bwrap_path
from crucible.tasks import world

needs_sandbox = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is required (make setup installs it)")


def test_same_seed_same_tasks_other_seed_other_inputs():
    first = world.generate([2, 3], count=20, seed=7)
    again = world.generate([2, 3], count=20, seed=7)
    other = world.generate([2, 3], count=20, seed=8)
    assert first == again
    assert [t.tests for t in first] != [t.tests for t in other]


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_train_and_heldout_are_disjoint_and_cover_the_level(level):
    train, heldout = set(world.sequences(level, "train")), set(world.sequences(level, "heldout"))
    assert not train & heldout
    assert train | heldout == set(world.sequences(level, "all"))
    assert heldout


def test_a_level_is_its_number_of_steps_and_steps_do_not_cancel():
    for task in world.generate([1, 2, 3], count=40, seed=1):
        assert len(task.ops) == task.level
        assert world.allowed(task.ops)
        assert task.reference.count("\n") == task.level + 2
    assert not world.allowed(("upper", "lower"))
    assert not world.allowed(("sort", "sort"))


def test_expected_outputs_come_from_the_reference_functions():
    task = world.make_task(("reverse", "upper", "dedupe"), seed=0)
    for given, want in task.tests:
        assert want == "".join(dict.fromkeys(given[::-1].upper()))


def test_prompt_is_short_and_opens_the_program_fence():
    task = world.make_task(("sort", "evens"))
    assert task.prompt == "Read a line, apply the steps in order, print the result: sort, evens\n```python\n"
    assert world.corpus_text(task) == task.prompt + task.reference + "```\n"


@needs_sandbox
def test_reference_programs_pass_at_every_level(tmp_path):
    tasks = world.generate([1, 2, 3, 4], count=6, seed=3)
    (tmp_path / "tasks.jsonl").write_text("".join(json.dumps(t.to_json()) + "\n" for t in tasks))
    suite, references = load_suite("world", tasks_file=str(tmp_path / "tasks.jsonl"))
    summary = evaluate_samples(suite, references(), tmp_path / "out", ks=[1], workers=2, progress=False)
    assert summary["n_tasks"] == 24
    assert summary["status_counts"] == {"pass": 24}


@needs_sandbox
def test_programs_that_do_not_solve_the_task_fail():
    task = world.make_task(("reverse", "upper", "dedupe"), seed=0)
    suite = WorldSuite([task])
    first_input, first_output = task.tests[0]
    wrong_order = "s = input()\ns = ''.join(dict.fromkeys(s))\ns = s.upper()\ns = s[::-1]\nprint(s)\n"
    hard_coded = f"print({first_output!r})\n"
    crashes = "s = input()\nprint(s[100])\n"
    verdicts = {name: suite.grade_one({"task_id": task.task_id, "completion": program})
                for name, program in [("wrong_order", wrong_order), ("hard_coded", hard_coded), ("crashes", crashes)]}
    assert verdicts["wrong_order"].status == "wrong_answer"
    assert verdicts["hard_coded"].status == "wrong_answer"
    assert verdicts["crashes"].status == "runtime_error"
    assert "IndexError" in verdicts["crashes"].detail


@needs_sandbox
def test_each_input_runs_in_a_fresh_process_with_its_own_status():
    program = ("import sys\nseen = globals().setdefault('seen', [])\nseen.append(1)\ns = input()\n"
               "if s == 'loop':\n    while True: pass\nif s == 'die':\n    sys.exit(4)\nprint(s, len(seen))\n")
    outcomes = run_on_inputs("python", program, ["a\n", "loop\n", "die\n", "b\n"], limits=Limits(timeout_s=1))
    assert [o.status for o in outcomes] == ["ok", "timeout", "runtime_error", "ok"]
    assert outcomes[0].stdout == "a 1\n"
    assert outcomes[3].stdout == "b 1\n"
    assert outcomes[2].detail == "exit code 4"


@needs_sandbox
def test_a_program_that_does_not_parse_is_a_compile_error_for_every_input():
    outcomes = run_on_inputs("python", "def f(:\n", ["a\n", "b\n"])
    assert [o.status for o in outcomes] == ["compile_error", "compile_error"]


def test_bad_tasks_file_names_file_and_line(tmp_path, capsys):
    good = json.dumps(world.make_task(("sort",)).to_json())
    path = tmp_path / "tasks.jsonl"
    path.write_text(good + "\n" + json.dumps({"ops": ["sort", "fly"], "tests": [["a", "a"]]}) + "\n")
    assert cli(["eval", "world", "--tasks", str(path), "--reference", "--out", str(tmp_path / "o")]) == 2
    assert f"{path}:2: 'ops' must be" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_world_command_writes_tasks_and_corpus(tmp_path):
    tasks, corpus = tmp_path / "t.jsonl", tmp_path / "c.jsonl"
    assert cli(["world", "--levels", "2", "--split", "heldout", "--count", "5", "--out", str(tasks)]) == 0
    assert cli(["world", "--levels", "1", "--corpus", "--out", str(corpus)]) == 0
    loaded = world.load_tasks(tasks)
    assert len(loaded) == 5
    assert all(world.split_of(t.ops) == "heldout" for t in loaded)
    texts = [json.loads(line)["text"] for line in corpus.read_text().splitlines()]
    assert len(texts) == len(world.OPS)
    assert all(text.endswith("print(s)\n```\n") for text in texts)


def test_bad_level_is_a_usage_error(tmp_path, capsys):
    assert cli(["world", "--levels", "9", "--out", str(tmp_path / "t.jsonl")]) == 2
    assert "level must be in 1..5" in capsys.readouterr().err
