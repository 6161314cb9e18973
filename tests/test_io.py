"""crucible.io: atomic replacement, durable appends, and the one torn-line policy of every JSONL reader."""

from __future__ import annotations

import json

import pytest

from crucible.io import JsonlError, appending, atomic_write, read_jsonl, replacing

GOOD = json.dumps({"a": 1}) + "\n"


def test_a_torn_last_line_is_skipped_and_only_repair_cuts_it(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(GOOD + '{"a": ')
    assert read_jsonl(path) == [(1, {"a": 1})]
    assert path.read_text() == GOOD + '{"a": '                  # a reader leaves a writer's file alone
    assert read_jsonl(path, repair=True) == [(1, {"a": 1})]
    assert path.read_text() == GOOD                              # appendable again


def test_a_complete_last_line_without_newline_is_kept_and_repair_ends_it(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(GOOD + '{"b": 2}')
    assert read_jsonl(path, repair=True) == [(1, {"a": 1}), (2, {"b": 2})]
    assert path.read_text() == GOOD + '{"b": 2}\n'
    with appending(path) as w:
        w.write({"c": 3})
    assert [row for _, row in read_jsonl(path)] == [{"a": 1}, {"b": 2}, {"c": 3}]


@pytest.mark.parametrize("line, message", [("not json", "not valid JSON"), ("[1, 2]", "expected a JSON object, got list")])
def test_a_bad_line_that_is_not_the_torn_tail_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "r.jsonl"
    path.write_text(GOOD + line + "\n" + GOOD)
    with pytest.raises(JsonlError, match=rf"r.jsonl:2: {message}"):
        read_jsonl(path, repair=True)
    assert path.read_text() == GOOD + line + "\n" + GOOD        # nothing was cut


def test_blank_lines_are_skipped_but_counted(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("\n" + GOOD + "  \n" + GOOD)
    assert [lineno for lineno, _ in read_jsonl(path)] == [2, 4]


def test_atomic_write_replaces_whole_files_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "f.json"
    atomic_write(path, "old")
    atomic_write(path, b"new")
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "f.json"
    atomic_write(path, "old")
    with pytest.raises(RuntimeError):
        with replacing(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]
