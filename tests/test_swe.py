"""SWE-style evaluation end to end on a small built set: the harness's self-checks.

Instances are built once per module from three stdlib modules with CPython's own tests (bug
injection, validated twice in the sandbox). Then: the gold patch resolves all of them, the empty
patch none, patches that delete or rewrite the failing tests or hijack the runner none, a patch
that does not apply is reported as such, a runner that never ran is an error (not unresolved),
and a scripted "agent" (an OpenAI-compatible server replaying fixed commands) resolves its
instance through `crucible swe run`, whose trajectory becomes SFT data that `crucible sft` trains on.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from crucible.cli import main as cli
from crucible.sandbox import bwrap_path
from crucible.swe import gitrepo
from crucible.swe.build import build
from crucible.swe.grade import TEST_LIMITS, grade_patch, grade_predictions
from crucible.swe.grade import tests_status as swe_bench_status
from crucible.swe.instances import load, repo_dir
from crucible.swe.sources import directory, stdlib_sources
from crucible.swe.testlog import parse
from crucible.swe.workspace import Workspace
from crucible.testing.scripted_agent import SUBMIT, ScriptedAgentServer, scripted_replies

pytestmark = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is required (make setup installs it)")

N = 4


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("swe") / "instances"
    counts = build(root, stdlib_sources(["bisect", "colorsys", "textwrap"]), N, seed=0, progress=False)
    return root, load(root), counts


def predictions(instances, patch_of):
    return {i["instance_id"]: {"instance_id": i["instance_id"], "model_name_or_path": "check",
                               "model_patch": patch_of(i)} for i in instances}


def test_build_keeps_the_requested_number(built):
    root, instances, counts = built
    assert counts["kept"] == N
    assert len(instances) == N


def test_instances_carry_swe_bench_fields(built):
    _, instances, _ = built
    for i in instances:
        assert i["FAIL_TO_PASS"], i["instance_id"]
        assert not set(i["FAIL_TO_PASS"]) & set(i["PASS_TO_PASS"])
        assert i["test_patch"] == ""
        assert i["patch"].startswith("diff --git")
        assert i["FAIL_TO_PASS"][0] in i["problem_statement"]
        assert i["difficulty"]["n_fail_to_pass"] == len(i["FAIL_TO_PASS"])


def test_statements_do_not_name_the_mutation(built):
    _, instances, _ = built
    for i in instances:
        assert i["mutation"]["kind"] not in i["problem_statement"]


def test_repos_are_plain_git_any_tool_can_check_out(built, tmp_path):
    root, instances, _ = built
    i = instances[0]
    dest = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo_dir(root, i["repo"])), str(dest)], check=True)
    subprocess.run(["git", "-C", str(dest), "checkout", "-q", i["base_commit"]], check=True)
    fixed = subprocess.run(["git", "-C", str(dest), "diff", i["base_commit"], "main"], check=True,
                           capture_output=True, text=True).stdout
    assert fixed == i["patch"]


def test_build_resumes_without_trying_anything_again(built, tmp_path):
    root, instances, _ = built
    copy = tmp_path / "instances"
    shutil.copytree(root, copy)
    again = build(copy, stdlib_sources(["bisect", "colorsys", "textwrap"]), N + 1, seed=0, progress=False)
    tried = [json.loads(line)["candidate"] for line in (copy / "build.log.jsonl").read_text().splitlines()]
    assert again["kept"] == N + 1
    assert len(tried) == len(set(tried))
    assert [i["instance_id"] for i in load(copy)][:N] == [i["instance_id"] for i in instances]


def test_gold_patch_resolves_every_instance(built, tmp_path):
    root, instances, _ = built
    summary = grade_predictions(root, instances, predictions(instances, lambda i: i["patch"]), tmp_path,
                                progress=False)
    assert summary["resolved_rate"] == 1.0
    assert summary["error_instances"] == 0
    report = json.loads((tmp_path / "logs" / instances[0]["instance_id"] / "report.json").read_text())
    one = report[instances[0]["instance_id"]]
    assert one["patch_successfully_applied"] is True
    assert one["tests_status"]["FAIL_TO_PASS"]["failure"] == []
    assert set(one["tests_status"]) == {"FAIL_TO_PASS", "PASS_TO_PASS", "FAIL_TO_FAIL", "PASS_TO_FAIL"}


def test_empty_patch_resolves_none(built, tmp_path):
    root, instances, _ = built
    summary = grade_predictions(root, instances, predictions(instances, lambda i: ""), tmp_path, progress=False)
    assert summary["resolved_rate"] == 0.0
    assert summary["empty_patch_instances"] == N


def deletion(path: str, content: str) -> str:
    lines = content.splitlines(keepends=True)
    return (f"diff --git a/{path} b/{path}\ndeleted file mode 100644\n--- a/{path}\n+++ /dev/null\n"
            f"@@ -1,{len(lines)} +0,0 @@\n" + "".join("-" + line for line in lines))


def rewrite(path: str, old: str, new: str) -> str:
    old_lines, new_lines = old.splitlines(keepends=True), new.splitlines(keepends=True)
    return (f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
            f"@@ -1,{len(old_lines)} +1,{len(new_lines)} @@\n"
            + "".join("-" + line for line in old_lines) + "".join("+" + line for line in new_lines))


def pristine_tests(root, instance) -> dict[str, str]:
    return {p: gitrepo.show(repo_dir(root, instance["repo"]), instance["base_commit"], p).decode()
            for p in instance["test_files"]}


def passing_stub(instance) -> str:
    """A test module in which every FAIL_TO_PASS and PASS_TO_PASS test exists and passes."""
    classes: dict[str, list[str]] = {}
    for test in instance["FAIL_TO_PASS"] + instance["PASS_TO_PASS"]:
        *_, cls, name = test.split(".")
        classes.setdefault(cls, []).append(name)
    body = ["import unittest\n"]
    for cls, names in classes.items():
        body.append(f"class {cls}(unittest.TestCase):\n")
        body += [f"    def {n}(self):\n        pass\n" for n in names]
    return "".join(body)


def test_deleting_the_failing_tests_resolves_none(built):
    root, instances, _ = built
    for i in instances:
        patch = "".join(deletion(p, c) for p, c in pristine_tests(root, i).items())
        report, _ = grade_patch(root, i, patch)
        assert report["patch_successfully_applied"] is True
        assert report["resolved"] is False, i["instance_id"]


def test_rewriting_the_tests_to_pass_resolves_none(built):
    root, instances, _ = built
    for i in instances:
        patch = "".join(rewrite(p, c, passing_stub(i)) for p, c in pristine_tests(root, i).items())
        report, _ = grade_patch(root, i, patch)
        assert report["patch_successfully_applied"] is True
        assert report["resolved"] is False, i["instance_id"]


def test_gold_fix_with_a_test_edit_still_resolves(built):
    """Restoring the tests does not penalise a real fix that also touched them."""
    root, instances, _ = built
    i = instances[0]
    path, content = next(iter(pristine_tests(root, i).items()))
    patch = i["patch"] + rewrite(path, content, content + "# an extra line\n")
    report, _ = grade_patch(root, i, patch)
    assert report["resolved"] is True


def test_new_file_hijacking_the_runner_resolves_none(built):
    root, instances, _ = built
    i = instances[0]
    fake = "import sys\n" + "".join(f"sys.stderr.write('{t.split('.')[-1]} ({t}) ... ok\\n')\n"
                                    for t in i["FAIL_TO_PASS"] + i["PASS_TO_PASS"]) + "sys.exit(0)\n"
    lines = fake.splitlines(keepends=True)
    patch = (f"diff --git a/unittest.py b/unittest.py\nnew file mode 100644\n--- /dev/null\n+++ b/unittest.py\n"
             f"@@ -0,0 +1,{len(lines)} @@\n" + "".join("+" + line for line in lines))
    report, _ = grade_patch(root, i, patch)
    assert report["removed_new_files"] == ["unittest.py"]
    assert report["resolved"] is False
    with Workspace(root, i) as ws:  # the control: left in place, the fake runner would resolve it
        (ws.repo / "unittest.py").write_text(fake)
        out = ws.test(TEST_LIMITS)
    status = swe_bench_status(i, parse(out.stdout + out.stderr, "unittest"))
    assert status["FAIL_TO_PASS"]["failure"] == []


def test_a_patch_that_does_not_apply_is_reported_as_such(built, tmp_path):
    root, instances, _ = built
    bad = "diff --git a/nowhere.py b/nowhere.py\n--- a/nowhere.py\n+++ b/nowhere.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"
    summary = grade_predictions(root, instances[:1], predictions(instances[:1], lambda i: bad), tmp_path,
                                progress=False)
    assert summary["not_applied_instances"] == 1
    assert summary["error_instances"] == 0


def test_a_runner_that_never_ran_is_an_error_not_unresolved(built, tmp_path):
    root, instances, _ = built
    broken = [{**instances[0], "test_cmd": "true"}]
    summary = grade_predictions(root, broken, predictions(broken, lambda i: i["patch"]), tmp_path, progress=False)
    assert summary["error_ids"] == [broken[0]["instance_id"]]
    assert summary["unresolved_ids"] == []
    assert summary["resolved_rate"] == 0.0


def test_grade_cli_names_the_bad_predictions_line(built, tmp_path, capsys):
    root, instances, _ = built
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"instance_id": instances[0]["instance_id"], "model_patch": ""}) + "\n"
                     + json.dumps({"instance_id": "nope", "model_patch": ""}) + "\n")
    rc = cli(["swe", "grade", "--instances", str(root), "--predictions", str(preds), "--out", str(tmp_path / "g")])
    assert rc == 2
    assert f"{preds}:2: unknown instance_id 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


def test_build_cli_refuses_a_directory_without_test_command(tmp_path, capsys):
    rc = cli(["swe", "build", "--out", str(tmp_path / "o"), "--source", str(tmp_path)])
    assert rc == 2
    assert "needs --test-cmd" in capsys.readouterr().err


def test_a_directory_source_builds_instances(tmp_path):
    repo = tmp_path / "proj"
    (repo / "tests").mkdir(parents=True)
    (repo / "mathx.py").write_text("def clamp(x, lo, hi):\n    if x < lo:\n        return lo\n"
                                   "    if x > hi:\n        return hi\n    return x\n")
    (repo / "tests" / "test_mathx.py").write_text(
        "import unittest\nfrom mathx import clamp\n\nclass T(unittest.TestCase):\n"
        "    def test_low(self):\n        self.assertEqual(clamp(-5, 0, 10), 0)\n"
        "    def test_high(self):\n        self.assertEqual(clamp(50, 0, 10), 10)\n"
        "    def test_mid(self):\n        self.assertEqual(clamp(5, 0, 10), 5)\n")
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "init"]):
        gitrepo.git(None, *cmd, cwd=repo)
    source = directory(repo, "python3 -m unittest -v tests.test_mathx", "unittest")
    out = tmp_path / "inst"
    counts = build(out, [source], 2, seed=1, progress=False)
    assert counts["kept"] == 2
    instances = load(out)
    report, _ = grade_patch(out, instances[0], instances[0]["patch"])
    assert report["resolved"] is True


# --- the agent, driven by a scripted OpenAI-compatible server ---------------------------------------


@pytest.fixture(scope="module")
def scripted_server(built):
    """Replays fixed replies: which script by the task in the first user turn, which reply by turn."""
    _, instances, _ = built
    scripts = {i["instance_id"]: scripted_replies(i, submit=k == 0) for k, i in enumerate(instances[:2])}
    with ScriptedAgentServer(instances, scripts) as server:
        yield server.url, server.seen


@pytest.fixture(scope="module")
def agent_run(built, scripted_server, tmp_path_factory):
    root, _, _ = built
    url, seen = scripted_server
    out = tmp_path_factory.mktemp("agent") / "run"
    rc = cli(["swe", "run", "--model", f"openai:scripted@{url}", "--instances", str(root), "--out", str(out),
              "--runs", "2", "--limit", "2", "--step-limit", "8", "--workers", "2", "--no-progress"])
    return rc, out, seen


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_scripted_agent_resolves_through_swe_run(agent_run):
    rc, out, _ = agent_run
    report = json.loads((out / "report.json").read_text())
    assert rc == 0
    assert report["pass@1"]["mean"] == 1.0
    assert report["pass@k"]["2"]["pass"] == 1.0
    assert len(report["runs"]) == 2


def test_submitted_and_salvaged_runs(agent_run, built):
    _, out, _ = agent_run
    _, instances, _ = built
    by_id = {r["instance_id"]: r for r in rows(out / "run-0" / "trajectories.jsonl")}
    submitted, salvaged = by_id[instances[0]["instance_id"]], by_id[instances[1]["instance_id"]]
    assert submitted["exit_status"] == "submitted"
    assert submitted["salvaged"] is False
    assert salvaged["exit_status"] == "format_error"
    assert salvaged["salvaged"] is True
    assert "diff --git" in salvaged["model_patch"]


def test_format_errors_are_answered_with_a_reminder(agent_run):
    _, _, seen = agent_run
    longest = max(seen, key=len)
    reminders = [m for m in longest if m["role"] == "user" and "exactly one ```bash" in m["content"]]
    assert len(reminders) >= 1


def test_rerun_with_the_same_out_does_nothing_new(agent_run, built, scripted_server):
    rc, out, seen = agent_run
    root, _, _ = built
    url, _ = scripted_server
    before = len(seen)
    again = cli(["swe", "run", "--model", f"openai:scripted@{url}", "--instances", str(root), "--out", str(out),
                 "--runs", "2", "--limit", "2", "--step-limit", "8", "--no-progress"])
    assert again == 0
    assert len(seen) == before


def test_rerun_with_other_settings_is_refused(agent_run, built, scripted_server, capsys):
    _, out, _ = agent_run
    root, _, _ = built
    url, _ = scripted_server
    rc = cli(["swe", "run", "--model", f"openai:scripted@{url}", "--instances", str(root), "--out", str(out),
              "--step-limit", "3", "--no-progress"])
    assert rc == 2
    assert "other settings" in capsys.readouterr().err


def test_resolved_trajectories_become_sft_conversations(agent_run, tmp_path):
    from crucible.model.chat import render_conversation
    from crucible.testing import tokenizer

    _, out, _ = agent_run
    traj = tmp_path / "traj.jsonl"
    assert cli(["swe", "trajectories", str(out), "--resolved-only", "--out", str(traj)]) == 0
    conversations = rows(traj)
    assert len(conversations) == 4  # 2 instances x 2 runs, all resolved
    submitted = [c for c in conversations if c["exit_status"] == "submitted"]
    assert submitted[0]["messages"][-1]["content"] == SUBMIT
    for c in conversations:
        assert c["messages"][-1]["role"] == "assistant"
        ids, mask = render_conversation(tokenizer(), c)
        assert 0 < sum(mask) < len(ids)


def test_crucible_sft_trains_on_the_trajectories_and_masks_observations(agent_run, tmp_path, capsys):
    """`crucible swe trajectories` output is `crucible sft --data` input as it stands: the commands
    are trained, the observations (sandbox output) and the task are not."""
    import re

    from crucible import testing

    _, out, _ = agent_run
    traj = tmp_path / "traj.jsonl"
    assert cli(["swe", "trajectories", str(out), "--resolved-only", "--out", str(traj)]) == 0
    model = tmp_path / "native"
    testing.random_gpt(testing.tokenizer()).save_pretrained(model, testing.tokenizer())
    common = ["sft", "--model", f"native:{model}", "--data", str(traj), "--seq-len", "8192", "--no-progress"]
    capsys.readouterr()
    assert cli(common + ["--show-mask", "1", "--out", str(tmp_path / "peek")]) == 0
    trained = re.findall(r"\[\[(.*?)\]\]", capsys.readouterr().out, re.S)
    assert any("```bash\nls && git status --short\n```" in t for t in trained)
    assert not any("<returncode>" in t for t in trained)
    assert not any("<issue>" in t for t in trained)
    assert cli(common + ["--max-steps", "2", "--batch-size", "2", "--val-fraction", "0",
                         "--out", str(tmp_path / "sft")]) == 0
    log = rows(tmp_path / "sft" / "log.jsonl")
    assert next(r for r in log if r.get("event") == "start")["dropped_over_long"] == 0
    assert len([r for r in log if r.get("event") == "train"]) == 2


def test_a_native_model_drives_the_agent_through_its_chat_template(built, tmp_path):
    """A random native GPT writes no valid command: its turns are reminded, the run ends by the step
    limit, nothing is salvaged, and the instance is graded unresolved (not an error)."""
    from crucible import testing

    root, instances, _ = built
    model = tmp_path / "native"
    testing.random_gpt(testing.tokenizer()).save_pretrained(model, testing.tokenizer())
    out = tmp_path / "run"
    rc = cli(["swe", "run", "--model", f"native:{model}", "--instances", str(root), "--out", str(out),
              "--limit", "1", "--step-limit", "2", "--max-tokens", "8", "--no-progress"])
    trajectory = rows(out / "run-0" / "trajectories.jsonl")[0]
    assert rc == 0
    assert trajectory["exit_status"] == "step_limit"
    assert [m["role"] for m in trajectory["messages"]] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert trajectory["model_patch"] == ""
    assert rows(out / "run-0" / "results.jsonl")[0]["resolved"] is False
    assert rows(out / "run-0" / "results.jsonl")[0]["error"] is None


def test_a_machine_that_cannot_sandbox_answers_errors_not_verdicts(built, scripted_server, tmp_path, monkeypatch):
    """What a Ray node without bubblewrap does with agent runs: an error row per instance, no
    prediction, no model call, nothing counted as unresolved or as an empty patch."""
    import crucible.sandbox
    from crucible.generate.registry import load_backend
    from crucible.swe.agent import AgentConfig
    from crucible.swe.runs import run_agent

    root, instances, _ = built
    url, seen = scripted_server
    before = len(seen)
    monkeypatch.setattr(crucible.sandbox, "bwrap_path", lambda: None)
    crucible.sandbox._sandbox_problem.cache_clear()
    backend = load_backend(f"openai:scripted@{url}")
    try:
        report = run_agent(backend, root, instances[:2], tmp_path / "run", AgentConfig(step_limit=8),
                           spec=f"openai:scripted@{url}", progress=False)
    finally:
        backend.close()
        crucible.sandbox._sandbox_problem.cache_clear()
    summary = json.loads((tmp_path / "run" / "run-0" / "report.json").read_text())
    trajectories = rows(tmp_path / "run" / "run-0" / "trajectories.jsonl")
    assert len(seen) == before
    assert {t["exit_status"] for t in trajectories} == {"sandbox_error"}
    assert all("bubblewrap" in t["detail"] for t in trajectories)
    assert summary["error_instances"] == 2
    assert summary["empty_patch_instances"] == 0
    assert summary["unresolved_instances"] == 0
    assert report["runs"][0]["errors"] == 2
    assert not (tmp_path / "run" / "run-0" / "preds.jsonl").exists()
