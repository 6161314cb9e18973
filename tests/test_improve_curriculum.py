"""Curriculum: all pass -> harder, some -> mine here, none -> easier, per level; decisions recorded."""

from __future__ import annotations

import json

import pytest

from crucible.cli import main as cli
from crucible.improve.curriculum import decide, task_outcomes


def rows(level: int, outcomes: dict[str, list[bool]]) -> list[dict]:
    return [{"task_id": t, "language": "python", "sample_index": i, "difficulty": f"level {level}",
             "status": "pass" if p else "wrong_answer", "passed": p} for t, ps in outcomes.items() for i, p in enumerate(ps)]


def test_the_pass_rate_decides():
    assert decide(rows(2, {"a": [True, True], "b": [True, True]}), 2)["action"] == "harder"
    assert decide(rows(2, {"a": [True, False], "b": [False, False]}), 2)["action"] == "mine"
    assert decide(rows(2, {"a": [False, False]}), 2)["action"] == "easier"


def test_next_level_stays_within_the_ladder():
    assert decide(rows(5, {"a": [True]}), 5)["next_level"] == 5
    assert decide(rows(1, {"a": [False]}), 1)["next_level"] == 1
    assert decide(rows(3, {"a": [True]}), 3)["next_level"] == 4


def test_only_rows_of_the_level_count_and_tasks_are_classified():
    mixed = rows(3, {"a": [True, False], "b": [True, True], "c": [False, False]}) + rows(4, {"d": [False]})
    d = decide(mixed, 3)
    assert d["samples"] == 6
    assert d["tasks"] == {"all": 1, "some": 1, "none": 1}
    assert d["mine_tasks"] == ["a"]
    assert task_outcomes(mixed)["d"] == "none"


def test_rows_without_levels_are_refused():
    with pytest.raises(ValueError, match="expected 'level N'"):
        decide([{"task_id": "x", "difficulty": "easy", "passed": True}], 1)


def test_command_records_each_round(tmp_path, capsys):
    run = tmp_path / "round1"
    run.mkdir()
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(3, {"a": [True, False]})))
    log = tmp_path / "curriculum.jsonl"
    for _ in range(2):
        assert cli(["curriculum", str(run), "--level", "3", "--record", str(log)]) == 0
    assert "-> mine (next level 3)" in capsys.readouterr().out
    recorded = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(recorded) == 2
    assert recorded[0]["pass_rate"] == 0.5
    assert cli(["curriculum", str(run), "--level", "4"]) == 2
