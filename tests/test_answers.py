"""Answer-checked tasks: normalisation, final-answer extraction, the arithmetic generator (determinism,
held-out split), the tasks file, program mode in the sandbox, vote@N by answer, and `crucible eval` /
`crucible mine` / `crucible curriculum` end to end against a scripted model served over the OpenAI API."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import pytest

from crucible.cli import main as cli
from crucible.grade.answer_text import answer_key, final_answer, same_answer, to_number
from crucible.grade.answers import AnswerSuite
from crucible.grade.verdicts import grade_all
from crucible.improve import mine
from crucible.improve.vote import vote
from crucible.languages import PROSE
from crucible.sandbox import bwrap_path
from crucible.sanitize import completion_from_chat
from crucible.tasks import answers
from crucible.tasks.common import TaskError
from tests.test_serve import start_server
from tests.test_serve_openai import stop

needs_sandbox = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is required (make setup installs it)")

SAME = [("42", "42"), ("1,000", "1000"), ("$1,000.00", "1000"), ("50%", "50"), ("1/2", "0.5"), ("0.50", "1/2"),
        ("3.10", "3.1"), ("−7", "-7"), ("+7", "7"), ("42 apples", "42"), ("$42.", "42"), ("\\frac{3}{4}", "0.75"),
        ("**42**", "42"), ("(42)", "42"), ("Paris", "paris"), ("  New   York. ", "new york"), ('"Paris"', "Paris"),
        ("Ｐａｒｉｓ", "Paris"), ("0.1", "1/10")]
DIFFERENT = [("41", "42"), ("4 2", "42"), ("41 or 42", "42"), ("1,2", "12"), ("x2 = 42", "42"), ("0.33", "1/3"),
             ("-42", "42"), ("42", "-42"), ("1/0", "0"), ("Paris", "London"), ("New York", "NewYork"), ("", "42")]


@pytest.mark.parametrize("got,expected", SAME)
def test_answers_that_are_the_same_after_normalisation(got, expected):
    assert same_answer(got, expected)


@pytest.mark.parametrize("got,expected", DIFFERENT)
def test_answers_that_differ_after_normalisation(got, expected):
    assert not same_answer(got, expected)


def test_numbers_are_exact_fractions():
    assert to_number("0.1") + to_number("0.2") == to_number("0.3")


EXTRACTED = [
    ("so 6 * 7 = 42.\n#### 42", "42"),
    ("The answer is 42.", "42"),
    ("Final answer: $1,250.", "$1,250"),
    ("**Answer:** 17", "17"),
    ("We get \\boxed{\\frac{1}{2}} in the end", "\\frac{1}{2}"),
    ("3 + 4 = 7, then 7 * 2 = 14", "14"),                       # no marker: the last number
    ("#### 12\nThe answer is 13.", "13"),                        # the last explicit answer counts
    ("Answer: 5. Checking: 5 + 1 = 6, 6 - 1 = 5, 2 * 9 = 18", "5"),  # an explicit answer beats later numbers
    ("<think>maybe \\boxed{9}</think>The answer is 8", "8"),      # thinking text is not the answer
    ("The answer is\n\n7", "7"),                                 # a marker with nothing after it is no marker
    ("No idea.", None),
]


@pytest.mark.parametrize("text,expected", EXTRACTED)
def test_final_answer_extraction(text, expected):
    assert final_answer(text) == expected


def test_vote_keys_group_equal_answers_and_only_them():
    assert answer_key("#### 0.50") == answer_key("1/2")
    assert answer_key("42") != answer_key("43")
    assert answer_key(None) is None


def test_same_seed_same_problems_other_seed_other_problems():
    first = answers.generate([2], count=20, seed=3)
    assert [t.to_json() for t in first] == [t.to_json() for t in answers.generate([2], count=20, seed=3)]
    assert {t.task_id for t in first} != {t.task_id for t in answers.generate([2], count=20, seed=4)}


@pytest.mark.parametrize("level", [1, 3, 5])
def test_a_level_is_its_number_of_operations(level):
    for t in answers.generate([level], count=10):
        assert t.solution.count("=") == level
        assert t.difficulty == f"level {level}"


def test_train_and_heldout_never_share_a_question_whatever_the_seed():
    train = {t.question for seed in (0, 1) for t in answers.generate([1, 2], split="train", count=60, seed=seed)}
    heldout = {t.question for seed in (0, 1) for t in answers.generate([1, 2], split="heldout", count=60, seed=seed)}
    assert len(heldout) > 100
    assert train & heldout == set()


def test_an_id_is_the_problem_so_the_same_problem_has_the_same_id():
    a, b = answers.generate([3], count=40, seed=0), answers.generate([3], count=40, seed=1)
    by_question = {t.question: t.task_id for t in a}
    shared = [t for t in b if t.question in by_question]
    assert all(by_question[t.question] == t.task_id for t in shared)
    assert len({t.task_id for t in a}) == 40


def test_the_worked_solution_ends_in_the_answer():
    for t in answers.generate([1, 2, 3, 4], count=10, seed=7):
        assert final_answer(t.solution) == t.answer


def test_modes_make_prose_or_python_tasks():
    t = answers.generate([1], count=1)[0]
    final, program = answers.task(t), answers.task(replace(t, mode="program"))
    assert final.language == PROSE
    assert final.kind == "answer"
    assert program.language == "python"
    assert program.prompt.endswith("```python\n")
    assert final.chat_messages()[0]["content"].startswith(t.question)


def test_a_chat_reply_in_words_is_kept_whole_but_its_thinking():
    task = answers.task(answers.generate([1], count=1)[0])
    reply = "<think>hmm</think>Let me see.\n```\n3 + 4\n```\nThe answer is 7."
    assert completion_from_chat(reply, task) == "Let me see.\n```\n3 + 4\n```\nThe answer is 7."


@pytest.mark.parametrize("line,error", [
    ('{"question": "q", "answer": "1"}', "'id' must be a non-empty string"),
    ('{"id": "a", "question": "q"}', "'answer' must be a non-empty string or a number"),
    ('{"id": "a", "question": "q", "answer": true}', "'answer' must be a non-empty string or a number"),
    ('{"id": "a", "question": "q", "answer": 1, "mode": "exec"}', "'mode' must be one of final, program"),
    ('{"id": "a", "question": "q", "answer": 1, "timeout_s": 0}', "'timeout_s' must be a number"),
])
def test_bad_tasks_file_names_file_and_line(tmp_path, line, error):
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "ok", "question": "q", "answer": 2}\n' + line + "\n")
    with pytest.raises(TaskError) as e:
        answers.load_tasks(path)
    assert f"{path}:2: {error}" in str(e.value)


def test_numbers_in_a_tasks_file_become_answers(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "a", "question": "q", "answer": 0.5}\n')
    assert answers.load_tasks(path)[0].answer == "0.5"


@needs_sandbox
def test_eval_bad_tasks_file_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "a", "question": "q"}\n')
    assert cli(["eval", "answers", "--tasks", str(path), "--reference", "--out", str(tmp_path / "o")]) == 2
    assert f"{path}:1" in capsys.readouterr().err
    assert not (tmp_path / "o" / "results.jsonl").exists()


def test_world_command_writes_arithmetic_tasks_and_corpus(tmp_path):
    out = tmp_path / "a.jsonl"
    assert cli(["world", "--family", "arithmetic", "--levels", "1,2", "--count", "5", "--split", "train",
                "--answer-mode", "program", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 10
    assert {r["mode"] for r in rows} == {"program"}
    corpus = tmp_path / "c.jsonl"
    assert cli(["world", "--family", "arithmetic", "--levels", "1", "--count", "3", "--corpus", "--out", str(corpus)]) == 0
    assert json.loads(corpus.read_text().splitlines()[0])["text"].startswith("Question: ")


def test_world_command_rejects_an_arithmetic_level_out_of_range(tmp_path, capsys):
    assert cli(["world", "--family", "arithmetic", "--levels", "9", "--out", str(tmp_path / "a.jsonl")]) == 2
    assert "level must be in 1..6" in capsys.readouterr().err


def test_final_mode_is_graded_in_process_and_identical_answers_once():
    tasks = [answers.AnswerTask(f"t{i}", "How many?", str(i + 1)) for i in range(3)]
    suite = AnswerSuite(tasks)
    samples = [{"task_id": t.task_id, "completion": c, "sample_index": i}
               for t in tasks for i, c in enumerate([f"... so #### {t.answer}", f"It is {t.answer}.", "#### 0"])]
    assert all(suite.check_sample(s) is None for s in samples)
    verdicts = grade_all(suite, samples, workers=1)
    assert [v.status for v in verdicts] == ["pass", "pass", "wrong_answer"] * 3
    assert len({suite.program_key(s) for s in samples}) == 6  # a task's two right replies read the same answer


@needs_sandbox
def test_program_mode_runs_in_the_sandbox():
    tasks = answers.scope(None, None, 4, mode="program")
    suite = AnswerSuite(tasks)
    refs = answers.reference_samples(tasks)
    assert all(v.passed for v in grade_all(suite, refs, workers=2))
    wrong = {"task_id": tasks[0].task_id, "language": "python", "completion": "print(-1)\n", "sample_index": 1}
    crash = {**wrong, "completion": "raise SystemExit(3)\n", "sample_index": 2}
    host = {**wrong, "completion": "open('/work/x', 'w')\nprint(1)\n", "sample_index": 3}
    assert [v.status for v in grade_all(suite, [wrong, crash, host], workers=1)] == [
        "wrong_answer", "runtime_error", "runtime_error"]


@needs_sandbox
def test_a_sample_in_the_other_mode_is_refused_with_the_fix(tmp_path, capsys):
    tasks = tmp_path / "t.jsonl"
    tasks.write_text(json.dumps({"id": "a", "question": "6 * 7?", "answer": 42}) + "\n")
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "a", "language": "py", "completion": "print(42)"}) + "\n")
    assert cli(["eval", "answers", "--tasks", str(tasks), "--samples", str(samples), "--out", str(tmp_path / "o")]) == 2
    assert "--answer-mode" in capsys.readouterr().err
    argv = ["eval", "answers", "--tasks", str(tasks), "--samples", str(samples), "--answer-mode", "program",
            "--out", str(tmp_path / "p"), "--no-progress"]
    assert cli(argv) == 0
    assert json.loads((tmp_path / "p" / "results.jsonl").read_text())["passed"] is True


def test_vote_clusters_replies_by_their_answer(tmp_path):
    t = answers.generate([1], count=1)[0]
    suite = AnswerSuite([t])
    texts = ["#### 1", f"so {t.answer}.0", f"The answer is {t.answer}.", "#### 1.00", f"#### {t.answer}"]
    samples = [{"task_id": t.task_id, "language": PROSE, "completion": c, "sample_index": i} for i, c in enumerate(texts)]
    rows = [{"task_id": t.task_id, "language": PROSE, "sample_index": i, "passed": v.passed}
            for i, v in enumerate(grade_all(suite, samples, workers=1))]
    [row] = vote(samples, rows, suite.vote_inputs, tmp_path, answer_of=suite.vote_answer, progress=False)
    assert row["submitted"] == 1
    assert row["cluster"] == 3
    assert row["passed"] is True


@needs_sandbox
def test_program_votes_agree_on_the_answer_not_its_spelling(tmp_path):
    t = replace(answers.generate([1], count=1)[0], mode="program")
    suite = AnswerSuite([t])
    printed = ["1", t.answer, f"{t.answer}.0", "2"]
    samples = [{"task_id": t.task_id, "language": "python", "completion": f"print('{p}')", "sample_index": i}
               for i, p in enumerate(printed)]
    rows = [{"task_id": t.task_id, "language": "python", "sample_index": i, "passed": v.passed}
            for i, v in enumerate(grade_all(suite, samples, workers=1))]
    [row] = vote(samples, rows, suite.vote_inputs, tmp_path, canonical=suite.vote_canonical, progress=False)
    assert row["cluster"] == 2
    assert row["submitted"] == 1
    assert row["passed"] is True


def test_pairs_of_answers_pair_right_replies_with_wrong_ones():
    graded = [{"task_id": "a", "language": PROSE, "sample_index": i, "completion": c, "status": s, "passed": s == "pass"}
              for i, (c, s) in enumerate([("#### 4", "pass"), ("#### 5", "wrong_answer"), ("so 4", "pass"),
                                          ("#### 4", "pass")])]
    assert [s["sample_index"] for s in mine.select_passing(graded, per_task=5)] == [0, 2]
    assert [(c["sample_index"], r["sample_index"]) for c, r in mine.select_pairs(graded, per_task=5)] == [(0, 1), (2, 1)]


SCRIPT = ("import json, sys; from crucible.serve import listen, serve; "
          "from crucible.testing.scripted import ScriptedModel; "
          "serve(ScriptedModel(json.loads(sys.argv[1])), 'scripted', listen('127.0.0.1', 0), quiet=True)")
REPLY = "<think>\\boxed{41}</think>6 * 7 = 42.\n#### 42"


@pytest.fixture(scope="module")
def scripted_url():
    proc, url = start_server([sys.executable, "-c", SCRIPT, json.dumps([REPLY])])
    yield url
    stop(proc)


@pytest.fixture
def tasks_file(tmp_path):
    path = tmp_path / "tasks.jsonl"
    rows = [{"id": "p1", "question": "What is 6 * 7?", "answer": "42", "difficulty": "level 1"},
            {"id": "p2", "question": "What is 84 / 2?", "answer": 42.0, "difficulty": "level 1"},
            {"id": "p3", "question": "What is 6 * 7 - 1?", "answer": "41", "difficulty": "level 1"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@needs_sandbox
def test_eval_curriculum_and_vote_end_to_end(scripted_url, tasks_file, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["eval", "answers", "--tasks", str(tasks_file), "--model", f"openai:scripted@{scripted_url}", "--chat",
            "--n", "2", "--k", "1", "--out", str(out), "--no-progress"]
    assert cli(argv) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted((r["task_id"], r["passed"]) for r in rows) == [("p1", True), ("p1", True), ("p2", True),
                                                                 ("p2", True), ("p3", False), ("p3", False)]
    assert json.loads((out / "summary.json").read_text())["pass@k"]["1"] == pytest.approx(2 / 3)
    assert cli(["curriculum", str(out), "--level", "1"]) == 0
    assert "-> mine (next level 1)" in capsys.readouterr().out
    assert cli(["vote", "answers", str(out), "--tasks", str(tasks_file), "--no-progress"]) == 0
    voted = json.loads((out / "vote.json").read_text())
    assert voted["vote@N"]["value"] == pytest.approx(2 / 3)
    assert [t["cluster"] for t in voted["tasks"]] == [2, 2, 2]


@needs_sandbox
def test_mine_keeps_the_passing_replies_end_to_end(scripted_url, tasks_file, tmp_path):
    out = tmp_path / "mine"
    argv = ["mine", "--model", f"openai:scripted@{scripted_url}", "--suite", "answers", "--tasks", str(tasks_file),
            "--n", "2", "--temperature", "0", "--out", str(out), "--no-progress"]
    assert cli(argv) == 0
    mined = [json.loads(line) for line in (out / "mined.jsonl").read_text().splitlines()]
    assert [r["task_id"] for r in mined] == ["p1", "p2"]
    assert mined[0]["prompt"] == "Question: What is 6 * 7?\nAnswer:"
    assert mined[0]["completion"].endswith("#### 42")
    assert (out / "pairs.jsonl").read_text() == ""
    assert json.loads((out / "mine.json").read_text())["passing_samples"] == 4


@needs_sandbox
def test_mining_drops_a_question_that_is_also_an_eval_question(scripted_url, tasks_file, tmp_path):
    evals = tmp_path / "eval.jsonl"
    evals.write_text(json.dumps({"id": "e1", "question": "What is 84 / 2?", "answer": 42, "mode": "program"}) + "\n")
    out = tmp_path / "mine"
    argv = ["mine", "--model", f"openai:scripted@{scripted_url}", "--suite", "answers", "--tasks", str(tasks_file),
            "--eval-tasks", str(evals), "--n", "1", "--out", str(out), "--no-progress"]
    assert cli(argv) == 0
    mined = [json.loads(line) for line in (out / "mined.jsonl").read_text().splitlines()]
    assert [r["task_id"] for r in mined] == ["p1"]
    offenders = [json.loads(line) for line in (out / "contamination.jsonl").read_text().splitlines()]
    assert [(o["task_id"], o["matches"][0]["task_id"]) for o in offenders] == [("p2", "e1")]


def test_grpo_rewards_answers_from_a_tasks_file(tasks_file):
    from crucible.commands.grpo import load_suite
    from crucible.posttrain.rewards import grade, rewards

    suite = load_suite(f"answers:{tasks_file}", "python", unsafe=False)
    completions = [" 6 * 7 = 42.\n#### 42", " #### 41", " #### 41"]
    verdicts = grade(suite, suite.tasks, completions, workers=1)
    assert rewards(suite.tasks, completions, verdicts) == [1.0, 0.0, 1.0]


def test_the_report_breaks_pass_rates_down_by_level():
    from crucible.report.build import build_report
    from crucible.report.render import render_markdown

    rows = [{"task_id": f"t{level}", "language": PROSE, "sample_index": 0, "status": status,
             "passed": status == "pass", "difficulty": f"level {level}"}
            for level, status in ((10, "pass"), (2, "wrong_answer"), (1, "pass"))]
    text = render_markdown(build_report(rows))
    assert "| language | level 1 | level 2 | level 10 |" in text
    assert "| text | 100.0 | 0.0 | 100.0 |" in text

