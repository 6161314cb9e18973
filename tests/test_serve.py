"""`crucible serve` as a real subprocess on loopback, driven by the OpenAI client and `crucible eval`."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from crucible.generate.registry import load_backend
from crucible.generate.types import GenParams
from crucible.testing import DEMO_HUMANEVAL, SMALL_TALK, TOY_TASK, demo_model


def start_serve(spec: str, name: str, *extra: str) -> tuple[subprocess.Popen, str]:
    return start_server([sys.executable, "-m", "crucible", "serve", "--model", spec, "--name", name, "--port", "0",
                         "--quiet", *extra])


def start_server(argv: list[str]) -> tuple[subprocess.Popen, str]:
    """Start a server process that prints crucible serve's URL line; (the process, its /v1 URL)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=120):
            proc.kill()
            raise RuntimeError("crucible serve did not start in 120 s")
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise RuntimeError(f"crucible serve failed: {line}{proc.stderr.read()}")
    return proc, line.split(" on ", 1)[1].strip()


@pytest.fixture(scope="module")
def server():
    proc, url = start_serve(f"hf:{demo_model()}", "tiny")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def eval_cli(*argv, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crucible", "eval", "humaneval", "--no-progress", *argv],
                          capture_output=True, text=True, timeout=timeout)


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_eval_humaneval_through_the_server(server, tmp_path):
    out = tmp_path / "limit3"
    done = eval_cli("--model", f"openai:tiny@{server}", "--limit", "3", "--max-tokens", "48", "--k", "1",
                    "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert sorted(r["task_id"] for r in rows(out / "samples.jsonl")) == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert len(rows(out / "results.jsonl")) == 3 and "| all | 3 | 3 |" in done.stdout
    out = tmp_path / "memorized"
    done = eval_cli("--model", f"openai:tiny@{server}", "--task-ids", ",".join(DEMO_HUMANEVAL), "--n", "2",
                    "--max-tokens", "48", "--k", "1,2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pass@k"]["1"] == 1.0 and summary["n_samples"] == 6  # the memorized solutions, graded for real


def test_killed_eval_resumes_without_loss_or_duplicates(server, tmp_path):
    out = tmp_path / "killed"
    argv = ["--model", f"openai:tiny@{server}", "--limit", "16", "--n", "2", "--temperature", "0.9",
            "--max-tokens", "32", "--k", "1", "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "crucible", "eval", "humaneval", "--no-progress", *argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = out / "samples.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not samples.exists() or samples.stat().st_size == 0):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = rows(samples) if samples.read_bytes().endswith(b"\n") else rows(samples)[:-1]
    assert 0 < len(first) < 32, "the run should have been killed part way"
    done = eval_cli(*argv)
    assert done.returncode == 0, done.stderr
    final = rows(samples)
    keys = [(r["task_id"], r["sample_index"]) for r in final]
    assert len(keys) == len(set(keys)) == 32
    assert final[:len(first)] == first  # what was there is kept as it was
    assert len(rows(out / "results.jsonl")) == 32


def test_streaming_matches_the_plain_reply_and_hides_stops(server):
    backend = load_backend(f"openai:tiny@{server}")
    params = GenParams(max_tokens=40, stop=tuple(TOY_TASK["stop"]))
    plain, = backend.complete(TOY_TASK["prompt"], 1, params)
    pieces: list[str] = []
    streamed, = backend.complete(TOY_TASK["prompt"], 1, params, on_text=lambda i, t: pieces.append(t))
    assert plain.text == streamed.text == "".join(pieces) == "    return x + 1\n\n"
    chat_pieces: list[str] = []
    reply, = backend.chat(SMALL_TALK[:1], 1, GenParams(max_tokens=20), on_text=lambda i, t: chat_pieces.append(t))
    assert reply.text == "".join(chat_pieces) == "2+2 is 4."


def test_seeded_sampling_and_n(server):
    body = {"model": "tiny", "prompt": "def", "max_tokens": 10, "temperature": 1.2, "seed": 7, "n": 3}
    status, a = post(server + "/completions", body)
    _, b = post(server + "/completions", body)
    assert status == 200 and [c["text"] for c in a["choices"]] == [c["text"] for c in b["choices"]]
    assert [c["index"] for c in a["choices"]] == [0, 1, 2] and a["usage"]["completion_tokens"] > 0


def test_models_and_errors(server):
    with urllib.request.urlopen(server + "/models", timeout=30) as r:
        assert [m["id"] for m in json.loads(r.read())["data"]] == ["tiny"]
    assert post(server + "/completions", {"model": "other", "prompt": "x"})[0] == 404
    status, error = post(server + "/completions", {"prompt": "x", "max_tokens": "many"})
    assert status == 400 and "max_tokens" in error["error"]["message"]
    assert post(server + "/chat/completions", {"messages": []})[0] == 400
    assert post(server + "/completions", {"prompt": [1, 10 ** 9]})[0] == 400   # a token id out of range
    request = urllib.request.Request(server + "/completions", b"{not json", {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request, timeout=30)
    assert e.value.code == 400


def test_serve_refuses_a_bad_model_with_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "crucible", "serve", "--model", f"hf:{tmp_path / 'nope'}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "not a directory" in done.stderr


def test_served_samples_equal_in_process_samples(server, tmp_path):
    from crucible.cli import main as cli

    argv = ["--limit", "3", "--n", "2", "--temperature", "0.9", "--seed", "5", "--max-tokens", "32", "--k", "1"]
    done = eval_cli("--model", f"openai:tiny@{server}", "--out", str(tmp_path / "served"), *argv)
    assert done.returncode == 0, done.stderr
    assert cli(["eval", "humaneval", "--model", f"hf:{demo_model()}", "--out", str(tmp_path / "local"),
                "--no-progress", *argv]) == 0
    def samples(name):
        return sorted((r["task_id"], r["sample_index"], r["completion"]) for r in rows(tmp_path / name / "samples.jsonl"))
    assert samples("served") == samples("local")  # same seeds reach the same model: the server adds nothing
    assert len({s[2] for s in samples("local")}) > 1
