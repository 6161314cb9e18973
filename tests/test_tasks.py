"""The typed Task and select_tasks: one scope rule for every suite; what a task says SFT and RL need."""

from __future__ import annotations

import pytest

from crucible.languages import get
from crucible.sanitize import completion_from_chat
from crucible.tasks import humaneval, humaneval_translated, puzzles
from crucible.tasks.common import Task, TaskError, select_tasks

TASKS = [Task(f"t/{i}", f"p{i}", "python") for i in range(4)]


def ids(tasks):
    return [t.task_id for t in tasks]


def test_select_keeps_the_order_given_and_drops_duplicates():
    assert ids(select_tasks(TASKS, "t/2, t/0,t/2,")) == ["t/2", "t/0"]
    assert ids(select_tasks(TASKS, ["t/3"])) == ["t/3"]
    assert ids(select_tasks(TASKS)) == ["t/0", "t/1", "t/2", "t/3"]


def test_limit_counts_task_ids_so_every_language_of_a_puzzle_comes_along():
    multi = [Task(f"p{i}", "x", lang) for i in range(3) for lang in ("python", "go")]
    assert [(t.task_id, t.language) for t in select_tasks(multi, limit=2)] == \
        [("p0", "python"), ("p0", "go"), ("p1", "python"), ("p1", "go")]
    assert ids(select_tasks(TASKS, "t/3,t/1,t/2", limit=2)) == ["t/3", "t/1"]


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_refused(limit):
    with pytest.raises(TaskError, match="--limit must be >= 1"):
        select_tasks(TASKS, limit=limit)


def test_unknown_ids_are_refused_with_the_suites_message():
    with pytest.raises(TaskError, match="unknown task.*t/9"):
        select_tasks(TASKS, "t/1,t/9")
    with pytest.raises(TaskError, match="HumanEval/0 .. HumanEval/163"):
        humaneval.tasks("HumanEval/999")
    with pytest.raises(TaskError, match="not available in rust: HumanEval/10: "):
        humaneval_translated.tasks("rust", "HumanEval/10")
    with pytest.raises(TaskError, match="unknown puzzle ids nope"):
        puzzles.select_puzzles(puzzles.load_puzzles(), "nope")


def test_every_suite_builds_tasks_with_their_stop_set():
    he, = humaneval.tasks("HumanEval/2")
    rs, = humaneval_translated.tasks("rust", "HumanEval/2")
    pz = puzzles.tasks(puzzles.select_puzzles(puzzles.load_puzzles(), limit=1), ["python"])[0]
    assert he.stop == humaneval.STOP
    assert rs.stop == tuple(humaneval_translated.translations("rust")[0]["HumanEval/2"].stop)
    assert pz.stop == puzzles.STOP
    assert (he.kind, rs.kind, pz.kind) == ("function", "function", "program")


def test_a_training_conversation_reads_back_as_the_solution():
    he, = humaneval.tasks("HumanEval/2")
    solution = he.prompt + humaneval.load_problems()["HumanEval/2"]["canonical_solution"]
    conversation = he.to_conversation(solution)
    assert [m["role"] for m in conversation] == ["user", "assistant"]
    assert conversation[0] == he.chat_messages()[0]
    completion = completion_from_chat(conversation[1]["content"], he, get("python"))
    assert completion == "\n" + solution.strip("\n") + "\n"    # the whole function replaces the stub


def test_reward_is_one_for_a_pass_and_zero_otherwise():
    task = TASKS[0]
    assert task.reward("pass") == 1.0
    assert task.reward("wrong_answer") == 0.0
    assert task.reward("sandbox_error") == 0.0
