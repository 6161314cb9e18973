"""The puzzle suite: its data, its reference solutions (Python and Go, run for real), and
`crucible eval puzzles` grading a mixed-language samples file end to end."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from crucible.cli import main as cli
from crucible.eval.pipeline import evaluate_samples
from crucible.eval.suites import load_suite
from crucible.io import JsonlError
from crucible.languages import MODULES
from crucible.tasks import puzzles
from crucible.tasks.common import TaskError
from test_languages_programs import ANSWER, PROGRAMS


def test_bundled_suite_is_graded_and_has_references_in_two_languages():
    suite = puzzles.load_puzzles()
    assert len(suite) >= 30
    counts = Counter(p["difficulty"] for p in suite)
    assert all(counts[d] >= 8 for d in puzzles.DIFFICULTIES), counts
    refs = puzzles.reference_files()
    for p in suite:
        assert (p["id"], "python") in refs and (p["id"], "go") in refs, p["id"]
        assert p["answer"] == p["answer"].strip() and "\n" not in p["answer"]


def test_reference_solutions_pass_in_python_and_go(tmp_path):
    suite, references = load_suite("puzzles", language="python,go")
    samples = references()
    assert len(samples) == 2 * len(suite.puzzles)
    summary = evaluate_samples(suite, samples, tmp_path, ks=[1], workers=2, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").open()]
    failed = [(r["task_id"], r["language"], r["status"], r["detail"]) for r in rows if not r["passed"]]
    assert not failed, failed
    assert set(summary["languages"]) == {"python", "go"}


def test_prompts_are_per_language_and_end_in_an_open_fence():
    suite, _ = load_suite("puzzles", language="rust,cpp", limit=2)
    assert [(t.task_id, t.language) for t in suite.tasks] == [("e01_multiples", "rust"), ("e01_multiples", "cpp"),
                                                              ("e02_power_digits", "rust"), ("e02_power_digits", "cpp")]
    t = suite.tasks[1]
    assert "C++ program" in t.prompt
    assert t.prompt.endswith("```cpp\n")
    assert t.stop == ("\n```",)
    assert t.kind == "program"
    assert t.answer == suite.puzzles[0]["answer"]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_eval_puzzles_grades_a_mixed_language_samples_file(tmp_path, capsys):
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [
        {"id": "sum-squares", "prompt": "Print the sum of i*i for i = 1..100.", "answer": ANSWER,
         "difficulty": "easy", "timeout_s": 1}])
    expected = {"correct": "pass", "wrong": "wrong_answer", "broken": "compile_error", "hang": "timeout"}
    samples = []
    for lang in MODULES:
        for kind in expected:
            samples.append({"task_id": "sum-squares", "language": lang, "completion": PROGRAMS[lang][kind],
                            "kind": kind})
    # a chat-style answer: prose around a fenced block
    samples.append({"task_id": "sum-squares", "language": "py", "kind": "correct",
                    "completion": f"Sure!\n```python\n{PROGRAMS['python']['correct']}```\nDone."})
    write_jsonl(tmp_path / "samples.jsonl", samples)
    out = tmp_path / "run"
    argv = ["eval", "puzzles", "--samples", str(tmp_path / "samples.jsonl"), "--tasks", str(tasks), "--k", "1,2",
            "--out", str(out), "--workers", "2", "--no-progress"]
    assert cli(argv) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").open()]
    assert len(rows) == len(samples)
    got = {(r["language"], r["kind"], r["sample_index"]): r["status"] for r in rows}
    for lang in MODULES:
        for i, (kind, status) in enumerate(expected.items()):
            assert got[(lang, kind, i)] == status, (lang, kind, [r for r in rows if r["language"] == lang])
    assert got[("python", "correct", 4)] == "pass"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["languages"]) == set(MODULES)
    assert summary["languages"]["python"]["pass@k"]["1"] == pytest.approx(2 / 5)
    assert summary["languages"]["rust"]["pass@k"]["1"] == pytest.approx(1 / 4)
    capsys.readouterr()
    # resuming grades nothing again
    assert cli(argv) == 0
    assert sum(1 for _ in (out / "results.jsonl").open()) == len(samples)


@pytest.mark.parametrize("line, message", [
    ('{"id": "a", "prompt": "p", "answer": "1"}', "difficulty"),
    ('{"id": "a", "prompt": "p", "answer": 1, "difficulty": "easy"}', "'answer' must be"),
    ('{"id": "a", "prompt": "p", "answer": "1", "difficulty": "easy", "timeout_s": -1}', "timeout_s"),
    ('not json', "not valid JSON"),
])
def test_bad_tasks_file_names_file_and_line(tmp_path, line, message, capsys):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"id": "ok", "prompt": "p", "answer": "1", "difficulty": "hard"}\n' + line + "\n")
    with pytest.raises((TaskError, JsonlError), match=rf"tasks.jsonl:2: .*{message}"):
        puzzles.load_puzzles(tasks)
    samples = write_jsonl(tmp_path / "s.jsonl", [{"task_id": "ok", "language": "c", "completion": ""}])
    rc = cli(["eval", "puzzles", "--samples", str(samples), "--tasks", str(tasks), "--out", str(tmp_path / "o")])
    assert rc == 2 and "tasks.jsonl:2" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_samples_with_unknown_language_or_task_are_rejected(tmp_path, capsys):
    samples = write_jsonl(tmp_path / "s.jsonl", [
        {"task_id": "e01_multiples", "language": "c", "completion": "int main(){}"},
        {"task_id": "e01_multiples", "language": "hack", "completion": "<?hh"}])
    rc = cli(["eval", "puzzles", "--samples", str(samples), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "s.jsonl:2" in err and "HHVM" in err
    assert not (tmp_path / "o").exists()
