"""Mining: only passing samples are kept, deduplicated by normalised program and capped per task; pairs
never use infrastructure failures; a planted copy of an eval solution is dropped and reported; the
control examples fail their tasks. End to end with a tiny model that has memorised its answers."""

from __future__ import annotations

import json

import pytest

from crucible.cli import main as cli
from crucible.improve import mine
from crucible.improve.contamination import ContaminationIndex, EvalText, bundled_eval_texts, normalise
from crucible.sandbox import bwrap_path
from crucible.tasks import world
from crucible.tasks.common import Task

needs_sandbox = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is required (make setup installs it)")


def sample(task, index, completion, status):
    return {"task_id": task, "language": "python", "sample_index": index, "completion": completion,
            "status": status, "passed": status == "pass"}


GRADED = [
    sample("a", 0, "print(1)\n", "pass"),
    sample("a", 1, "print( 1 )  # the same program\n", "pass"),
    sample("a", 2, "print(2)\n", "wrong_answer"),
    sample("a", 3, "x = 1\nprint(x)\n", "pass"),
    sample("a", 4, "print(3)\n", "pass"),
    sample("b", 0, "print(9)\n", "sandbox_error"),
    sample("b", 1, "print(8)\n", "pass"),
    sample("c", 0, "print(7)\n", "timeout"),
]


def test_only_passing_distinct_programs_are_kept_at_most_k_per_task():
    kept = mine.select_passing(GRADED, per_task=2)
    assert [(s["task_id"], s["sample_index"]) for s in kept] == [("a", 0), ("a", 3), ("b", 1)]


def test_python_programs_are_compared_after_the_ast():
    assert normalise("print( 1 )  # one\n") == normalise("print(1)")
    assert normalise("print(1)") != normalise("print(2)")


def test_pairs_match_passing_with_model_failures_only():
    pairs = mine.select_pairs(GRADED, per_task=5)
    assert {(c["sample_index"], r["sample_index"]) for c, r in pairs if c["task_id"] == "a"} == {(0, 2), (3, 2), (4, 2)}
    assert [c for c, _ in pairs if c["task_id"] == "b"] == []


def test_pairs_spread_over_both_sides_and_never_repeat():
    graded = [sample("t", i, f"print({i})\n", "pass" if i < 3 else "wrong_answer") for i in range(6)]
    pairs = [(c["sample_index"], r["sample_index"]) for c, r in mine.select_pairs(graded, per_task=4)]
    assert len(set(pairs)) == 4
    assert {c for c, _ in pairs} == {0, 1, 2}


def test_a_planted_copy_of_an_eval_solution_is_dropped_and_reported():
    texts = bundled_eval_texts()
    canonical = next(t for t in texts if t.suite == "humaneval" and t.kind == "solution" and t.task_id == "HumanEval/23")
    prompt = "Write strlen.\n```python\n"
    planted = sample("mined/1", 0, canonical.text.replace("    ", "  "), "pass")  # re-indented: same ast
    honest = sample("mined/2", 0, "import sys\nprint(len(sys.stdin.read()))\n", "pass")
    tasks = {(t, "python"): Task(t, prompt, "python", ("\n```",)) for t in ("mined/1", "mined/2")}
    kept, pairs, offenders = mine.decontaminate([planted, honest], [], tasks, ContaminationIndex(texts))
    assert [s["task_id"] for s in kept] == ["mined/2"]
    assert offenders[0]["matches"][0]["task_id"] == "HumanEval/23"
    assert offenders[0]["matches"][0]["kind"] == "solution"


def test_a_mostly_copied_solution_is_caught_by_its_ngrams():
    solution = "\n".join(f"total_{i} = compute_something({i}, weights[{i}]) * scale + offset" for i in range(12))
    index = ContaminationIndex([EvalText("mine", "t", "solution", solution)])
    edited = solution.replace("total_11", "grand_total")
    assert index.matches("", edited)[0]["overlap"] >= 0.9
    assert index.matches("", solution.split("\n")[0]) == []


def test_level_three_train_solutions_are_not_flagged_against_level_three_heldout():
    index = ContaminationIndex(bundled_eval_texts([3]))
    train = world.generate([3], split="train", count=80, seed=0)
    assert [t.task_id for t in train if index.matches(t.prompt, t.reference)] == []


def test_control_moves_every_program_to_another_task():
    kept = mine.select_passing(GRADED, per_task=1)
    control = mine.control_samples(kept)
    assert [(s["control_from"], s["task_id"]) for s in control] == [("a", "b"), ("b", "a")]
    assert {s["language"] for s in control} == {"python"}
    assert mine.control_samples(kept[:1]) == []


@pytest.fixture(scope="module")
def memorising_model(tmp_path_factory):
    """A tiny HF model that answers four train tasks of the world: two correctly, one with the held-out
    reference of an equivalent task (a planted copy: it passes), one wrongly."""
    from crucible.testing import build_tiny_hf_model

    correct = [world.make_task(("lower", "sort")), world.make_task(("reverse", "swapcase"))]
    planted_for = world.make_task(("reverse", "upper"))     # train split
    copied = world.make_task(("upper", "reverse"))         # held-out split, same behaviour
    wrong = world.make_task(("sort", "lower", "evens"))
    assert world.split_of(planted_for.ops) == "train"
    assert world.split_of(copied.ops) == "heldout"
    texts = [(t.prompt, t.reference + "```\n") for t in correct]
    texts += [(planted_for.prompt, copied.reference + "```\n"), (wrong.prompt, "s = input()\nprint(s)\n```\n")]
    model = build_tiny_hf_model(tmp_path_factory.mktemp("model") / "m", texts, steps=300)
    return model, correct + [planted_for, wrong], copied


@needs_sandbox
def test_mine_command_end_to_end(memorising_model, tmp_path, capsys):
    model, tasks, copied = memorising_model
    tasks_file = tmp_path / "train.jsonl"
    tasks_file.write_text("".join(json.dumps(t.to_json()) + "\n" for t in tasks))
    out = tmp_path / "mine"
    argv = ["mine", "--model", f"hf:{model}", "--suite", "world", "--tasks", str(tasks_file), "--n", "2",
            "--temperature", "0", "--max-tokens", "80", "--control", "--out", str(out), "--no-progress"]
    assert cli(argv) == 0
    mined = [json.loads(line) for line in (out / "mined.jsonl").read_text().splitlines()]
    assert sorted(r["task_id"] for r in mined) == sorted(t.task_id for t in tasks[:2])
    assert all(r["completion"].endswith("print(s)\n```") for r in mined)
    assert all(r["prompt"] == world.make_task(tuple(r["task_id"].split("/")[2].split("-"))).prompt for r in mined)
    offenders = [json.loads(line) for line in (out / "contamination.jsonl").read_text().splitlines()]
    assert [o["task_id"] for o in offenders] == [tasks[2].task_id]
    assert offenders[0]["matches"][0]["task_id"] == copied.task_id
    control = [json.loads(line) for line in (out / "control.jsonl").read_text().splitlines()]
    assert sorted((r["control_from"], r["task_id"]) for r in control) == sorted(
        [(tasks[0].task_id, tasks[1].task_id), (tasks[1].task_id, tasks[0].task_id)])
    summary = json.loads((out / "mine.json").read_text())
    assert summary["samples"] == 8
    assert summary["passing_samples"] == 6
    assert summary["mined"] == 2
    text = capsys.readouterr().out
    assert "pass@1 75.0% [" in text
    executed = sum(1 for line in (out / "results.jsonl").read_text().splitlines() if json.loads(line)["executed"])
    assert cli(argv) == 0  # a re-run resumes: nothing is sampled or graded again
    assert len((out / "results.jsonl").read_text().splitlines()) == 8
    assert executed == 4
    assert (out / "mined.jsonl").read_text() == "".join(json.dumps(r) + "\n" for r in mined)
