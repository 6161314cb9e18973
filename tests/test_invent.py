"""Problems a model writes itself: a scripted model answers with a good problem, a wrong reference,
weak tests, unparseable text, a duplicate, tests the judge must not run, and references that try the
host's files and network (they fail in the sandbox). Then the kept file is a suite: its references
pass `crucible eval --reference`, and `crucible mine` mines a tiny model that memorised them."""

from __future__ import annotations

import ast
import json
import shutil
import socket
from pathlib import Path

import pytest

from crucible.cli import main as cli
from crucible.eval.suites import load_suite
from crucible.improve import invent
from crucible.improve.mutants import mutants
from crucible.sandbox import bwrap_path
from crucible.tasks.common import TaskError
from crucible.tasks.humaneval import load_problems
from crucible.testing.scripted_agent import ScriptedAgentServer

needs_sandbox = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is required (make setup installs it)")


def response(solution: str, asserts: list[str]) -> str:
    test = "def check(candidate):\n" + "".join(f"    assert {a}\n" for a in asserts)
    return f"Here is a problem.\n\n```python\n{solution}```\n\n```python\n{test}```\n"


RUNNING_MAX = '''def running_max(values: list) -> list:
    """Return the running maximum: item i is the largest of values[0], ..., values[i].
    >>> running_max([1, 3, 2])
    [1, 3, 3]
    """
    out = []
    for v in values:
        out.append(v if not out or v > out[-1] else out[-1])
    return out
'''
CLAMP = '''def clamp(x: int, low: int, high: int) -> int:
    """Return x limited to the range low..high."""
    if x < low:
        return low
    if x > high:
        return high
    return x
'''
GOOD = response(RUNNING_MAX, ["candidate([1, 3, 2]) == [1, 3, 3]", "candidate([]) == []",
                              "candidate([5, 4, 6]) == [5, 5, 6]", "candidate([-2, -1]) == [-2, -1]"])
GOOD_TOO = response(CLAMP, ["candidate(5, 0, 3) == 3", "candidate(-1, 0, 3) == 0", "candidate(2, 0, 3) == 2"])
REFERENCE_FAILS = response('def double(x: int) -> int:\n    """Return twice x."""\n    return x + 2\n',
                           ["candidate(1) == 2", "candidate(3) == 6", "candidate(0) == 0"])
WEAK = response('def add(a: int, b: int) -> int:\n    """Return a plus b."""\n    return a + b\n',
                ["candidate(1, 2) is not None", "candidate(0, 0) is not None", "candidate(-1, 5) is not None"])
UNPARSEABLE = "I would rather not.\n```python\nprint('one block only')\n```\n"
DUPLICATE = GOOD.replace("    out = []\n", "    out = []  # the same problem again\n")
READS_PASSWD = response('def has_users() -> bool:\n    """Whether the user database is readable."""\n'
                        '    with open("/etc/passwd") as f:\n        return len(f.read()) > 0\n',
                        ["candidate() is True", "candidate() == True", "bool(candidate())"])
TOO_FEW = response(CLAMP.replace("clamp", "limit"), ["candidate(5, 0, 3) == 3"])


def calls_home(port: int) -> str:
    return response(f'def ping() -> int:\n    """1 when the server answers."""\n    import socket\n'
                    f'    with socket.create_connection(("127.0.0.1", {port}), timeout=2) as s:\n'
                    '        s.sendall(b"hello")\n    return 1\n',
                    ["candidate() == 1", "candidate() > 0", "candidate() != 0"])


def writes_from_the_judge(marker) -> str:
    return response(CLAMP.replace("clamp", "bound"), ["candidate(5, 0, 3) == 3", "candidate(2, 0, 3) == 2",
                                                      f"candidate(1, 0, 3) == open({str(marker)!r}, 'w').write('x')"])


def humaneval_copy() -> str:
    p = load_problems()["HumanEval/0"]
    return response(p["prompt"].strip("\n") + "\n" + p["canonical_solution"].strip("\n") + "\n",
                    ["candidate([1.0, 2.0], 0.5) == False", "candidate([1.0, 1.2], 0.5) == True",
                     "candidate([], 1.0) == False"])


# ---- parsing, static checks, mutants (no sandbox) -------------------------------------------------

def test_a_response_becomes_a_humaneval_problem():
    problem = invent.parse(GOOD)
    assert problem.entry_point == "running_max"
    assert problem.prompt.startswith("def running_max(values: list) -> list:\n")
    assert problem.prompt.endswith('    [1, 3, 3]\n    """\n')
    assert problem.canonical_solution.startswith("    out = []\n")
    assert problem.test.startswith("def check(candidate):\n")


@pytest.mark.parametrize("text, why", [
    (UNPARSEABLE, "expected 2 closed"),
    (response("x = 1\n", ["candidate() == 1"]), "expected imports, then one function"),
    (response("def f():\n    return 1\n", ["candidate() == 1"]), "needs a docstring"),
    (response('def f():\n    """One."""; return 1\n', ["candidate() == 1"]), "line after the docstring"),
    (response('def f(:\n    """One."""\n', ["candidate() == 1"]), "SyntaxError"),
    (GOOD.replace("def check(candidate):", "def check(candidate, extra):"), "one `def check(candidate):`"),
])
def test_unparseable_responses_are_rejected_with_their_reason(text, why):
    with pytest.raises(invent.Rejected, match="unparseable") as info:
        invent.parse(text)
    assert why in info.value.detail


@pytest.mark.parametrize("text, reason, why", [
    (TOO_FEW, "too few asserts", "1 assert(s)"),
    (writes_from_the_judge("/tmp/never"), "unsafe for the judge", "only calls of"),
    (GOOD.replace("candidate([]) == []", "candidate([]).__class__ == list"), "unsafe for the judge", "Attribute"),
    (GOOD.replace("candidate([]) == []", "[x for x in candidate([])] == []"), "unsafe for the judge",
     "ListComp"),
    (GOOD.replace("candidate([]) == []", "candidate([]) == os"), "unsafe for the judge", "unknown name 'os'"),
    ("import os\n" + GOOD.replace("```python\ndef running_max", "```python\nimport os\ndef running_max"),
     "unsafe for the judge", "import of os"),
    (GOOD.replace("def running_max(values: list)", "def running_max(values=print('hi'))"),
     "unsafe for the judge", "not a literal"),
    (GOOD.replace("def running_max(values: list)", "def running_max(values: print('hi'))"),
     "unsafe for the judge", "not a type name"),
    (GOOD.replace("def running_max", "@print\ndef running_max"), "unsafe for the judge", "decorated"),
])
def test_static_checks_reject_weak_or_unsafe_problems(text, reason, why):
    with pytest.raises(invent.Rejected, match=reason) as info:
        invent.check_static(invent.parse(text), invent.MIN_ASSERTS)
    assert why in info.value.detail


def test_the_good_problem_passes_the_static_checks():
    assert invent.check_static(invent.parse(GOOD), invent.MIN_ASSERTS) is None


def function(code: str) -> ast.FunctionDef:
    return ast.parse(code).body[0]


def test_mutants_flip_comparisons_and_operators_and_shift_constants():
    code = 'def f(x):\n    """Doc."""\n    if x < 10 and x != 3:\n        return x + 1\n    return True\n'
    made = [m["completion"] for m in mutants(function(code), limit=100)]
    assert any("if x <= 10 and x != 3:" in m for m in made)
    assert any("if x < 10 and x == 3:" in m for m in made)
    assert any("if x < 10 or x != 3:" in m for m in made)
    assert any("return x - 1" in m for m in made)
    assert any("return x + 2" in m for m in made)
    assert any("if x < 9 and x != 3:" in m for m in made)
    assert any("return False" in m for m in made)
    assert any("if not (x < 10 and x != 3):" in m for m in made)
    assert any("return type(x + 1)()" in m for m in made)


def test_mutants_never_touch_the_docstring_and_are_distinct():
    made = mutants(function(RUNNING_MAX), limit=100)
    assert all('"""' not in m["completion"] for m in made)
    assert len({m["completion"] for m in made}) == len(made)


def test_mutants_are_capped_and_spread():
    code = 'def f(x):\n    """Doc."""\n' + "".join(f"    x = x + {k}\n" for k in range(20)) + "    return x\n"
    made = mutants(function(code), limit=5)
    assert len(made) == 5
    assert made[-1]["line"] > made[0]["line"]


def test_each_sample_gets_its_own_topic():
    assert invent.topic(0) != invent.topic(1)
    assert f"Topic: {invent.topic(2)}" in invent.chat_messages(2)[1]["content"]
    assert invent.base_prompt(3).endswith(f"Topic: {invent.topic(3)}\n```python\n")


# ---- HumanEval-format tasks files ---------------------------------------------------------------

def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def problem_row(task_id="mine/0", **changes):
    return {"task_id": task_id, "prompt": 'def one():\n    """One."""\n', "entry_point": "one",
            "canonical_solution": "    return 1\n", "test": "def check(candidate):\n    assert candidate() == 1\n",
            **changes}


@pytest.mark.parametrize("rows, message", [
    ([problem_row(), problem_row(prompt=None)], ":2: 'prompt' must be a non-empty string"),
    ([problem_row(), problem_row()], ":2: duplicate id 'mine/0'"),
    ([problem_row(entry_point="two")], ":1: 'prompt' does not define two()"),
    ([problem_row(test="def check(candidate:\n")], ":1: 'test' is not valid Python"),
    ([problem_row(test="assert True\n")], ":1: 'test' does not define check()"),
])
def test_a_bad_tasks_file_names_its_file_and_line(tmp_path, rows, message):
    path = write_rows(tmp_path / "t.jsonl", rows)
    with pytest.raises(TaskError) as info:
        load_suite("humaneval", tasks_file=str(path))
    assert str(info.value).startswith(f"{path}{message}")


def test_a_bad_tasks_file_is_exit_code_2_naming_the_line(tmp_path, capsys):
    path = write_rows(tmp_path / "t.jsonl", [problem_row(), problem_row("mine/1", test="")])
    assert cli(["eval", "humaneval", "--tasks", str(path), "--reference", "--out", str(tmp_path / "o")]) == 2
    assert f"{path}:2: 'test' must be a non-empty string" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_tasks_file_is_python_only(tmp_path):
    path = write_rows(tmp_path / "t.jsonl", [problem_row()])
    with pytest.raises(TaskError, match="Python only"):
        load_suite("humaneval", language="rust", tasks_file=str(path))


def test_a_tasks_file_suite_has_its_own_tasks_and_references(tmp_path):
    path = write_rows(tmp_path / "t.jsonl", [problem_row(), problem_row("mine/1")])
    suite, references = load_suite("humaneval", tasks_file=str(path), task_ids="mine/1")
    assert [t.task_id for t in suite.tasks] == ["mine/1"]
    assert [s["completion"] for s in references()] == ["    return 1\n"]
    assert suite.check_sample({"task_id": "HumanEval/0", "completion": ""}) is not None


# ---- the command, end to end in the sandbox ------------------------------------------------------

@pytest.fixture(scope="module")
def listener():
    """A host socket that references try to reach from the sandbox (they must not)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    yield server
    server.close()


@pytest.fixture(scope="module")
def invented(tmp_path_factory, listener):
    """`crucible invent --chat` against a scripted server: one scripted reply per sample index."""
    tmp = tmp_path_factory.mktemp("invent")
    marker = tmp / "judge-wrote-this"
    replies = [GOOD, REFERENCE_FAILS, WEAK, UNPARSEABLE, DUPLICATE, READS_PASSWD, calls_home(
        listener.getsockname()[1]), writes_from_the_judge(marker), TOO_FEW, humaneval_copy(), GOOD_TOO]
    instances = [{"instance_id": str(i), "problem_statement": f"Topic: {invent.topic(i)}"} for i in range(len(replies))]
    server = ScriptedAgentServer(instances, {str(i): [r] for i, r in enumerate(replies)})
    out = tmp / "out"
    argv = ["invent", "--model", server.spec, "--chat", "--n", str(len(replies)), "--temperature", "0.8",
            "--out", str(out), "--workers", "2", "--no-progress"]
    with server:  # up for the whole module: a test that resumes would ask it if it sampled again
        assert cli(argv) == 0
        asked = len(server.seen)
        yield {"out": out, "argv": argv, "server": server, "asked": asked, "marker": marker, "tmp": tmp}


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def reasons(out) -> dict[int, str]:
    return {r["sample_index"]: r["reason"] for r in rows(out / "rejected.jsonl")}


@needs_sandbox
def test_only_verified_problems_with_tests_that_kill_a_mutant_are_kept(invented):
    kept = rows(invented["out"] / "problems.jsonl")
    assert [r["task_id"] for r in kept] == ["invent/0", "invent/10"]
    assert [r["entry_point"] for r in kept] == ["running_max", "clamp"]
    assert all(r["killed"] >= 1 for r in kept)
    assert all(0 < r["mutation_score"] <= 1 for r in kept)


@needs_sandbox
def test_every_rejection_is_recorded_with_its_reason(invented):
    got = reasons(invented["out"])
    assert got[1] == "reference fails"
    assert got[2] == "tests kill no mutant"
    assert got[3] == "unparseable"
    assert got[4] == "duplicate"
    assert got[7] == "unsafe for the judge"
    assert got[8] == "too few asserts"
    assert got[9] == "contaminated"
    assert sorted(got) == [1, 2, 3, 4, 5, 6, 7, 8, 9]


@needs_sandbox
def test_a_reference_reading_the_hosts_files_fails_in_the_sandbox(invented):
    assert Path("/etc/passwd").read_text()  # readable on the host: only the sandbox makes the reference fail
    rejected = {r["sample_index"]: r for r in rows(invented["out"] / "rejected.jsonl")}
    assert rejected[5]["reason"] == "reference fails"
    assert "/etc/passwd" in rejected[5]["detail"]


@needs_sandbox
def test_a_reference_calling_the_host_never_reaches_it(invented, listener):
    rejected = {r["sample_index"]: r for r in rows(invented["out"] / "rejected.jsonl")}
    assert rejected[6]["reason"] == "reference fails"
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody connected


@needs_sandbox
def test_tests_the_judge_would_run_on_the_host_are_never_run(invented):
    assert not invented["marker"].exists()


@needs_sandbox
def test_the_summary_counts_reasons_with_intervals(invented):
    summary = json.loads((invented["out"] / "invent.json").read_text())
    assert summary["decided"] == 11
    assert summary["kept"] == 2
    assert summary["rejected"]["reference fails"] == 3
    lo, hi = summary["kept_share_ci"]
    assert lo < 2 / 11 < hi
    assert summary["mutation_score"]["ci"][0] <= summary["mutation_score"]["mean"] <= summary["mutation_score"]["ci"][1]


@needs_sandbox
def test_a_rerun_asks_nothing_and_writes_nothing(invented):
    before = {name: (invented["out"] / name).read_text() for name in ("problems.jsonl", "rejected.jsonl")}
    assert cli(invented["argv"]) == 0  # the fixture's server is still up: it would be asked
    assert len(invented["server"].seen) == invented["asked"]
    assert {name: (invented["out"] / name).read_text() for name in before} == before


@needs_sandbox
def test_other_sampling_settings_are_refused_with_exit_2(invented, capsys):
    argv = [a if a != "0.8" else "0.2" for a in invented["argv"]]
    assert cli(argv) == 2
    assert "sampling.json" in capsys.readouterr().err
    assert len(invented["server"].seen) == invented["asked"]


@needs_sandbox
def test_undecided_samples_are_decided_again_without_asking_the_model(invented):
    copy = invented["tmp"] / "copy"
    shutil.copytree(invented["out"], copy)
    (copy / "problems.jsonl").unlink()
    (copy / "rejected.jsonl").write_text("")
    argv = [a if a != str(invented["out"]) else str(copy) for a in invented["argv"]]
    assert cli(argv) == 0
    assert len(invented["server"].seen) == invented["asked"]
    assert [r["task_id"] for r in rows(copy / "problems.jsonl")] == ["invent/0", "invent/10"]
    assert reasons(copy) == reasons(invented["out"])


@needs_sandbox
def test_kept_problems_pass_the_reference_self_check(invented, capsys):
    out = invented["tmp"] / "ref"
    tasks = invented["out"] / "problems.jsonl"
    assert cli(["eval", "humaneval", "--tasks", str(tasks), "--reference", "--k", "1", "--out", str(out),
                "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pass@k"]["1"] == 1.0


@needs_sandbox
def test_a_mutant_of_a_kept_problem_fails_eval(invented):
    kept = rows(invented["out"] / "problems.jsonl")[0]
    samples = invented["tmp"] / "mutant.jsonl"
    wrong = kept["canonical_solution"].replace("v > out[-1]", "v < out[-1]")
    write_rows(samples, [{"task_id": kept["task_id"], "completion": wrong}])
    out = invented["tmp"] / "mutant"
    assert cli(["eval", "humaneval", "--tasks", str(invented["out"] / "problems.jsonl"), "--samples", str(samples),
                "--k", "1", "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "summary.json").read_text())["pass@k"]["1"] == 0.0


@needs_sandbox
def test_mine_mines_a_model_on_the_kept_problems(invented):
    from crucible.testing import build_tiny_hf_model

    tasks = invented["out"] / "problems.jsonl"
    kept = rows(tasks)
    model = build_tiny_hf_model(invented["tmp"] / "model", [(r["prompt"], r["canonical_solution"]) for r in kept],
                                steps=300)
    out = invented["tmp"] / "mine"
    assert cli(["mine", "--model", f"hf:{model}", "--suite", "humaneval", "--tasks", str(tasks), "--n", "1",
                "--temperature", "0", "--max-tokens", "64", "--out", str(out), "--no-progress"]) == 0
    mined = rows(out / "mined.jsonl")
    assert sorted(r["task_id"] for r in mined) == ["invent/0", "invent/10"]


class CompletingModel:
    """A base model that continues the prompt's opened fence with the good problem, and records prompts."""
    spec, concurrency = "scripted-base", 1

    def __init__(self):
        self.prompts = []

    def complete(self, prompt, n, params, on_text=None):
        from crucible.generate.types import Generation

        self.prompts.append((prompt, params.stop))
        text = GOOD.split("```python\n", 1)[1] + "\nTopic: another one\n```python\n"
        return [Generation(text[:text.index(params.stop[0])])]


@needs_sandbox
def test_a_base_model_continues_the_opened_fence(tmp_path):
    from crucible.generate.types import GenParams
    from crucible.improve.contamination import ContaminationIndex

    model = CompletingModel()
    settings = invent.Settings(n=1, chat=False, progress=False)
    summary = invent.invent(model, tmp_path, GenParams(temperature=0.5), settings, ContaminationIndex([]))
    assert summary["kept"] == 1
    assert model.prompts[0][0] == invent.base_prompt(0)
    assert rows(tmp_path / "problems.jsonl")[0]["entry_point"] == "running_max"


@needs_sandbox
def test_invent_is_a_recipe_stage_whose_problems_a_later_stage_grades(invented):
    # Last in the file: it asks the module's scripted server again (the resume tests count its requests).
    recipe = invented["tmp"] / "invent.toml"
    recipe.write_text(f'[[stage]]\nname = "inv"\nkind = "invent"\nmodel = "{invented["server"].spec}"\nchat = true\n'
                      'n = 11\ntemperature = 0.8\nworkers = 2\n\n'
                      '[[stage]]\nname = "ref"\nkind = "eval"\nargs = ["humaneval"]\ntasks = "{inv}/problems.jsonl"\n'
                      'reference = true\nk = "1"\ngates = ["pass@1 >= 1.0"]\n')
    run = invented["tmp"] / "run"
    assert cli(["run", str(recipe), "--out", str(run)]) == 0
    assert json.loads((run / "inv" / "invent.json").read_text())["kept"] == 2
    assert json.loads((run / "ref" / "summary.json").read_text())["n_tasks"] == 2
