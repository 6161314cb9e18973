"""`--ray` on a real two-node Ray cluster on this machine: the same rows and summary as a local run,
exactly once, through a killed worker and a killed driver.

One cluster serves the whole module (starting one costs 20-40 s on the 2-core box): two nodes of
one CPU each, started with `ray start` on their own ports and temp dir (`crucible.testing.LocalCluster`),
and stopped process by process at the end, even when a test fails.
"""

import json
import os
import re
import signal
import sys
import threading
import time

import pytest

from crucible.cli import main as cli
from crucible.sandbox import bwrap_path
from test_improve_run import write_recipe

pytestmark = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is required (make setup installs it)")

SLEEPY = "    import time\n    time.sleep(0.4)\n"  # wall time, not CPU: a batch is still running when killed


@pytest.fixture(scope="module")
def cluster():
    from crucible.testing import LocalCluster

    with LocalCluster(nodes=2, cpus_per_node=1, object_store_mb=80) as c:
        yield c
    assert c.pids() == []  # nothing of the cluster outlives the module


def humaneval_samples(path, prefix: str = "", tasks: int = 12) -> list[dict]:
    """Per task: the reference, a wrong answer, a crash, and the reference again (a duplicate program)."""
    from crucible.tasks.humaneval import load_problems

    rows = []
    for p in list(load_problems().values())[:tasks]:
        good = prefix + p["canonical_solution"]
        rows += [{"task_id": p["task_id"], "completion": good},
                 {"task_id": p["task_id"], "completion": prefix + "    return None\n"},
                 {"task_id": p["task_id"], "completion": prefix + "    raise ValueError('no')\n"},
                 {"task_id": p["task_id"], "completion": good}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def eval_args(samples, out, *extra) -> list[str]:
    return ["eval", "humaneval", "--samples", str(samples), "--out", str(out), "--k", "1,2", "--no-progress",
            "--limit", "12", *extra]


def rows(out) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def by_identity(result_rows) -> dict:
    return {(r["task_id"], r["language"], r["sample_index"]): r for r in result_rows}


def test_eval_through_ray_gives_the_rows_and_summary_of_a_local_run(cluster, tmp_path):
    samples = tmp_path / "samples.jsonl"
    n = len(humaneval_samples(samples))
    assert cli(eval_args(samples, tmp_path / "local")) == 0
    assert cli(eval_args(samples, tmp_path / "ray", "--ray", cluster.address)) == 0
    local, remote = rows(tmp_path / "local"), rows(tmp_path / "ray")
    assert len(remote) == n
    assert len(by_identity(remote)) == n  # no row twice
    assert by_identity(remote) == by_identity(local)
    assert json.loads((tmp_path / "ray" / "summary.json").read_text()) == \
        json.loads((tmp_path / "local" / "summary.json").read_text())


def test_sampling_on_ray_replicas_gives_the_samples_and_summary_of_a_local_run(cluster, tmp_path):
    from crucible.testing import DEMO_HUMANEVAL, demo_model

    model = demo_model()
    argv = ["eval", "humaneval", "--model", f"hf:{model}", "--task-ids", ",".join(DEMO_HUMANEVAL) + ",HumanEval/0",
            "--n", "2", "--temperature", "0.8", "--max-tokens", "48", "--k", "1", "--no-progress"]
    assert cli(argv + ["--out", str(tmp_path / "local")]) == 0
    assert cli(argv + ["--out", str(tmp_path / "ray"), "--ray", cluster.address]) == 0
    sampled = {}
    for run in ("local", "ray"):
        lines = (tmp_path / run / "samples.jsonl").read_text().splitlines()
        sampled[run] = {(r["task_id"], r["sample_index"]): r for r in map(json.loads, lines)}
        assert len(sampled[run]) == len(lines) == 8  # 4 tasks x 2, each once
    assert sampled["ray"] == sampled["local"]  # seeds are per task: the replica that answered does not matter
    assert by_identity(rows(tmp_path / "ray")) == by_identity(rows(tmp_path / "local"))
    assert json.loads((tmp_path / "ray" / "summary.json").read_text()) == \
        json.loads((tmp_path / "local" / "summary.json").read_text())


def mined_rows(out) -> dict[str, list]:
    """mined.jsonl and pairs.jsonl as sorted lists of rows (their order is not part of the contract)."""
    return {name: sorted((out / name).read_text().splitlines()) for name in ("mined.jsonl", "pairs.jsonl")}


def test_mine_through_ray_keeps_the_rows_of_a_local_run(cluster, tmp_path):
    from crucible.tasks import world
    from crucible.testing import build_tiny_hf_model

    mixed, solved = world.make_task(("lower", "sort")), world.make_task(("reverse", "swapcase"))
    wrong = "s = input()\nprint(s)\n```\n"  # taught next to the right answer: sampling gives both
    model = build_tiny_hf_model(tmp_path / "model", [(mixed.prompt, mixed.reference + "```\n"), (mixed.prompt, wrong),
                                                     (solved.prompt, solved.reference + "```\n")], steps=300)
    tasks_file = tmp_path / "train.jsonl"
    tasks_file.write_text("".join(json.dumps(t.to_json()) + "\n" for t in (mixed, solved)))
    argv = ["mine", "--model", f"hf:{model}", "--suite", "world", "--tasks", str(tasks_file), "--n", "4",
            "--temperature", "1", "--max-tokens", "80", "--no-progress"]
    assert cli(argv + ["--out", str(tmp_path / "local")]) == 0
    assert cli(argv + ["--out", str(tmp_path / "ray"), "--ray", cluster.address]) == 0
    local, remote = mined_rows(tmp_path / "local"), mined_rows(tmp_path / "ray")
    assert local["mined.jsonl"] != []  # the comparison below is not between two empty files
    assert local["pairs.jsonl"] != []
    assert remote["mined.jsonl"] == local["mined.jsonl"]
    assert remote["pairs.jsonl"] == local["pairs.jsonl"]


@pytest.fixture(scope="module")
def swe_instances(tmp_path_factory):
    from crucible.swe.build import build
    from crucible.swe.instances import load
    from crucible.swe.sources import stdlib_sources

    root = tmp_path_factory.mktemp("swe") / "instances"
    build(root, stdlib_sources(["bisect", "colorsys"]), 2, seed=0, progress=False)
    return root, load(root)


def test_swe_grade_through_ray_gives_the_rows_and_report_of_a_local_run(cluster, swe_instances, tmp_path):
    root, instances = swe_instances
    preds = tmp_path / "preds.jsonl"  # the gold patch for the first, a no-op for the second
    preds.write_text("".join(json.dumps({"instance_id": i["instance_id"], "model_name_or_path": "check",
                                         "model_patch": i["patch"] if k == 0 else ""}) + "\n"
                             for k, i in enumerate(instances)))
    argv = ["swe", "grade", "--instances", str(root), "--predictions", str(preds), "--no-progress"]
    assert cli(argv + ["--out", str(tmp_path / "local")]) == 0
    assert cli(argv + ["--out", str(tmp_path / "ray"), "--ray", cluster.address]) == 0
    local, remote = (sorted((tmp_path / run / "results.jsonl").read_text().splitlines()) for run in ("local", "ray"))
    assert len(remote) == len(instances)
    assert remote == local
    report = json.loads((tmp_path / "ray" / "report.json").read_text())
    assert report["resolved_instances"] == 1
    assert report == json.loads((tmp_path / "local" / "report.json").read_text())


def swe_run_files(out, runs: int) -> dict:
    """Per run: trajectories, predictions and results, sorted by instance; then the run report. What a
    Ray run must share with a local one; only times differ (wall_s, and unittest's "Ran 6 tests in
    0.012s" in observations)."""
    def lines(path, drop=()):
        kept = [{k: v for k, v in json.loads(line).items() if k not in drop} for line in path.open()]
        return sorted(re.sub(r" in \d+\.\d+s\b", " in Ts", json.dumps(row, sort_keys=True)) for row in kept)
    files = {"report.json": json.loads((out / "report.json").read_text())}
    for r in range(runs):
        d = out / f"run-{r}"
        files[f"run-{r}"] = (lines(d / "trajectories.jsonl", drop=("wall_s",)), lines(d / "preds.jsonl"),
                             lines(d / "results.jsonl"), json.loads((d / "report.json").read_text()))
    return files


def run_killing_one_worker(cluster, process: str, work) -> tuple[list[int], bool]:
    """Run `work` in a thread; SIGKILL the first Ray worker process named `process` seen while it runs;
    wait (up to 300 s) for `work` to end. The killed pids (empty: none was seen), and whether it ended."""
    driver = threading.Thread(target=work)
    driver.start()
    killed = []
    deadline = time.monotonic() + 120
    while not killed and driver.is_alive() and time.monotonic() < deadline:
        for pid in cluster.pids(process):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            break
        time.sleep(0.05)
    driver.join(timeout=300)
    return killed, not driver.is_alive()


def test_swe_run_through_ray_writes_the_rows_of_a_local_run_through_a_killed_worker(cluster, swe_instances,
                                                                                    tmp_path):
    from crucible.testing import ScriptedAgentServer, scripted_replies

    root, instances = swe_instances
    scripts = {i["instance_id"]: scripted_replies(i, submit=k == 0) for k, i in enumerate(instances)}
    with ScriptedAgentServer(instances, scripts) as server:
        argv = ["swe", "run", "--model", server.spec, "--instances", str(root), "--runs", "2", "--step-limit", "8",
                "--no-progress"]
        assert cli(argv + ["--out", str(tmp_path / "local")]) == 0
        codes = []
        killed, _ = run_killing_one_worker(cluster, "ray::attempt", lambda: codes.append(  # an agent run on a node
            cli(argv + ["--out", str(tmp_path / "ray"), "--ray", cluster.address])))
    assert killed, "no agent run was seen running"
    assert codes == [0]
    local, remote = swe_run_files(tmp_path / "local", 2), swe_run_files(tmp_path / "ray", 2)
    assert len(remote["run-0"][0]) == len(instances)  # one trajectory per instance: none lost, none twice
    assert len(remote["run-1"][0]) == len(instances)
    assert local["report.json"]["resolved_counts"] == {i["instance_id"]: 2 for i in instances}
    assert remote == local


def test_a_recipe_run_with_ray_gives_the_stage_results_of_a_local_run(cluster, tmp_path, monkeypatch, capsys):
    from crucible.scale import grading

    recipe = write_recipe(tmp_path, threshold=0.3)  # world, two evals, compare, gate (test_improve_run's)
    fanned = []
    real_fan_out = grading.fan_out
    monkeypatch.setattr(grading, "fan_out", lambda *a, **kw: fanned.append(a[0].__name__) or real_fan_out(*a, **kw))
    assert cli(["run", str(recipe), "--out", str(tmp_path / "local")]) == 0
    assert fanned == []
    assert cli(["run", str(recipe), "--out", str(tmp_path / "local"), "--ray", cluster.address]) == 0
    assert capsys.readouterr().out.count("finished earlier, skipped") == 5  # --ray changed no finished stage
    assert cli(["run", str(recipe), "--out", str(tmp_path / "ray"), "--ray", cluster.address]) == 0
    assert fanned == ["grade_batch", "grade_batch"]  # both eval stages graded on the cluster; world took no --ray
    for stage in ("ref", "model"):
        local, remote = tmp_path / "local" / stage, tmp_path / "ray" / stage
        assert by_identity(rows(remote)) == by_identity(rows(local))
        assert json.loads((remote / "summary.json").read_text()) == json.loads((local / "summary.json").read_text())
    metrics = {run: [json.loads(line)["metrics"] for line in (tmp_path / run / "eval_results.jsonl").open()]
               for run in ("local", "ray")}
    assert len(metrics["local"]) == 5  # one row per stage: the --ray re-run recorded nothing new
    assert metrics["ray"] == metrics["local"]


def test_a_killed_driver_resumes_from_its_files(cluster, tmp_path):
    samples = tmp_path / "samples.jsonl"
    n = len(humaneval_samples(samples))
    assert cli(eval_args(samples, tmp_path / "local")) == 0
    local = (tmp_path / "local" / "results.jsonl").read_text().splitlines(keepends=True)
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    (resumed / "results.jsonl").write_text("".join(local[:n // 2]) + local[n // 2][:25])  # torn last line
    assert cli(eval_args(samples, resumed, "--ray", cluster.address)) == 0
    assert len(rows(resumed)) == n
    assert by_identity(rows(resumed)) == by_identity(rows(tmp_path / "local"))
    assert json.loads((resumed / "summary.json").read_text()) == \
        json.loads((tmp_path / "local" / "summary.json").read_text())


def test_a_killed_worker_loses_and_duplicates_no_row(cluster, tmp_path):
    from crucible.eval.suites import load_suite
    from crucible.grade.runner import grade_samples, read_samples
    from crucible.scale import connect
    from crucible.scale.grading import RayGrading

    suite, _ = load_suite("humaneval", limit=12)
    samples_file = tmp_path / "samples.jsonl"
    n = len(humaneval_samples(samples_file, prefix=SLEEPY, tasks=8))
    samples = read_samples(samples_file, suite)
    done = {}

    def run():
        with connect(cluster.address):
            done["rows"] = grade_samples(RayGrading(suite, batch=2), samples, tmp_path / "ray", progress=False)

    killed, ended = run_killing_one_worker(cluster, "ray::grade_batch", run)
    assert killed, "no grading worker was seen running"
    assert ended
    graded = rows(tmp_path / "ray")
    assert len(graded) == n
    assert len(by_identity(graded)) == n
    assert sum(r["passed"] for r in graded) == n // 2  # the reference and its duplicate, per task
    assert {r["status"] for r in graded} == {"pass", "wrong_answer", "runtime_error"}


def test_a_node_without_bubblewrap_answers_infrastructure_errors(monkeypatch):
    import crucible.sandbox
    from crucible.eval.suites import load_suite
    from crucible.scale import grading

    monkeypatch.setattr(crucible.sandbox, "bwrap_path", lambda: None)
    crucible.sandbox._sandbox_problem.cache_clear()
    suite, references = load_suite("humaneval", limit=2)
    batch = [(suite.program_key(s), s) for s in references()]
    try:
        got = grading.grade_batch(suite, batch)
    finally:
        crucible.sandbox._sandbox_problem.cache_clear()
    assert [key for key, _ in got] == [key for key, _ in batch]
    assert {v.status for _, v in got} == {"sandbox_error"}
    assert all("bubblewrap" in v.detail for _, v in got)


def test_without_ray_installed_the_error_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    samples = tmp_path / "samples.jsonl"
    humaneval_samples(samples, tasks=1)
    assert cli(eval_args(samples, tmp_path / "out", "--ray", "auto")) == 2
    assert "pip install 'crucible[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.jsonl").exists()


def test_an_address_nobody_listens_on_is_a_usage_error(tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    samples = tmp_path / "samples.jsonl"
    humaneval_samples(samples, tasks=1)
    assert cli(eval_args(samples, tmp_path / "out", "--ray", f"127.0.0.1:{port}")) == 2
    assert f"127.0.0.1:{port}" in capsys.readouterr().err
