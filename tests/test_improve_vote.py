"""vote@N: the largest behaviour cluster is submitted (not the most frequent text), failing programs do not
vote, and the figures come with intervals — on the task world and on puzzles, run in the sandbox."""

from __future__ import annotations

import json

import pytest

from crucible.cli import main as cli
from crucible.improve.vote import pick
from crucible.sandbox import bwrap_path
from crucible.tasks import world

needs_sandbox = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is required (make setup installs it)")

RIGHT = "s = input()\ns = s[::-1]\ns = s.upper()\nprint(s)\n"  # reverse, upper
RIGHT_TOO = "print(input()[::-1].upper())\n"
RIGHT_THREE = "t = input()\nprint(''.join(reversed(t)).upper())\n"
WRONG = "s = input()\nprint(s.upper())\n"                   # forgets to reverse
WRONG_TOO = "print(input().upper())\n"
WRONG_THREE = "x = input().upper()\nprint(x)\n"
CRASH = "s = input()\nprint(s[99])\n"


def test_largest_cluster_wins_and_ties_go_to_the_earliest():
    assert pick([["a"], ["b"], ["b"], ["a"], ["b"]]) == (1, 3)
    assert pick([["b"], ["a"], ["a"], ["b"]]) == (0, 2)
    assert pick([None, None, None, ["x"]]) == (3, 1)
    assert pick([None, None]) == (0, 0)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@needs_sandbox
def test_world_vote_submits_the_majority_behaviour(tmp_path, capsys):
    wrong_wins = world.make_task(("reverse", "upper"), seed=0)
    right_wins = world.make_task(("upper", "reverse"), seed=1)  # the same answers, another task id
    crashers_most = world.make_task(("swapcase", "reverse"), seed=2)
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [t.to_json() for t in (wrong_wins, right_wins, crashers_most)])
    swap_right = "print(input().swapcase()[::-1])\n"
    programs = {
        wrong_wins.task_id: [RIGHT, WRONG, RIGHT_TOO, WRONG_TOO, WRONG_THREE],       # 3 agree on a wrong answer
        right_wins.task_id: [WRONG, RIGHT, RIGHT_TOO, RIGHT_THREE, CRASH],           # 3 agree on the right one
        crashers_most.task_id: [CRASH, CRASH, CRASH, swap_right, "print(input()[::-1])\n"],  # crashes do not vote
    }
    samples = write_jsonl(tmp_path / "samples.jsonl", [
        {"task_id": tid, "completion": p, "sample_index": i} for tid, ps in programs.items() for i, p in enumerate(ps)])
    out = str(tmp_path / "run")
    assert cli(["eval", "world", "--tasks", tasks, "--samples", samples, "--k", "1,5", "--out", out,
                "--no-progress"]) == 0
    capsys.readouterr()
    assert cli(["vote", "world", out, "--tasks", tasks, "--samples", samples, "--no-progress"]) == 0
    text = capsys.readouterr().out
    result = json.loads((tmp_path / "run" / "vote.json").read_text())
    by_task = {v["task_id"]: v for v in result["tasks"]}
    assert by_task[wrong_wins.task_id]["passed"] is False
    assert by_task[wrong_wins.task_id]["cluster"] == 3
    assert by_task[right_wins.task_id]["passed"] is True
    assert by_task[right_wins.task_id]["submitted"] == 1
    assert by_task[crashers_most.task_id]["passed"] is True
    assert by_task[crashers_most.task_id]["cluster"] == 1
    assert result["vote@N"]["value"] == pytest.approx(2 / 3)
    assert result["pass@N"]["value"] == pytest.approx(1.0)
    assert result["pass@1"]["value"] == pytest.approx((2 / 5 + 3 / 5 + 1 / 5) / 3)
    assert "| vote@5 | 66.7% [" in text


@needs_sandbox
def test_vote_resumes_from_its_behaviour_cache(tmp_path, capsys):
    task = world.make_task(("sort",), seed=0)
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [task.to_json()])
    samples = write_jsonl(tmp_path / "samples.jsonl", [
        {"task_id": task.task_id, "completion": p} for p in ("print(''.join(sorted(input())))\n", WRONG)])
    out = str(tmp_path / "run")
    assert cli(["eval", "world", "--tasks", tasks, "--samples", samples, "--out", out, "--no-progress"]) == 0
    for _ in range(2):
        assert cli(["vote", "world", out, "--tasks", tasks, "--samples", samples, "--no-progress"]) == 0
    cached = (tmp_path / "run" / "vote_behaviours.jsonl").read_text().splitlines()
    assert len(cached) == 2
    capsys.readouterr()


@needs_sandbox
def test_puzzle_vote_is_over_printed_answers(tmp_path, capsys):
    answer = "21426429"  # e01_multiples
    completions = ["print(42)\n", f"print({answer})\n", "print(6 * 7)\n", "print(sum(n for n in range(10000) "
                   "if n % 3 == 0 or n % 7 == 0))\n", "print(40 + 2)\n"]
    samples = write_jsonl(tmp_path / "samples.jsonl", [
        {"task_id": "e01_multiples", "language": "python", "completion": c} for c in completions])
    out = str(tmp_path / "run")
    assert cli(["eval", "puzzles", "--language", "python", "--task-ids", "e01_multiples", "--samples", samples,
                "--out", out, "--no-progress"]) == 0
    assert cli(["vote", "puzzles", out, "--language", "python", "--samples", samples, "--no-progress"]) == 0
    capsys.readouterr()
    result = json.loads((tmp_path / "run" / "vote.json").read_text())
    assert result["tasks"][0]["cluster"] == 3
    assert result["vote@N"]["value"] == 0.0
    assert result["pass@N"]["value"] == 1.0


def test_ungraded_samples_are_refused(tmp_path, capsys):
    task = world.make_task(("sort",), seed=0)
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [task.to_json()])
    samples = write_jsonl(tmp_path / "samples.jsonl", [{"task_id": task.task_id, "completion": WRONG}])
    run = tmp_path / "run"
    run.mkdir()
    write_jsonl(run / "results.jsonl", [{"task_id": task.task_id, "language": "python", "sample_index": 5,
                                         "status": "pass", "passed": True}])
    assert cli(["vote", "world", str(run), "--tasks", tasks, "--samples", samples, "--unsafe-no-sandbox",
                "--no-progress"]) == 2
    assert "have no graded row" in capsys.readouterr().err
