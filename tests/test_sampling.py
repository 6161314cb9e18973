"""Sample-then-grade: resumable samples.jsonl, prompting modes, --runs, and `crucible eval --model`."""

from __future__ import annotations

import argparse
import json
import threading
from dataclasses import dataclass, field

import pytest

from crucible.cli import UsageError
from crucible.cli import main as cli
from crucible.generate import sampling
from crucible.generate.backends import Generation
from crucible.testing import DEMO_HUMANEVAL, TOY_TASK, demo_model
from crucible.grade import Verdict
from crucible.grade.runner import program_hash
from crucible.languages import run_program
from crucible.sandbox import Limits


@dataclass
class ToySuite:
    """A Suite with our own tasks, graded for real: prompt + completion + test, in the sandbox."""
    tasks: list[dict]
    name: str = "toy"
    executed: list[str] = field(default_factory=list)

    def check_sample(self, sample):
        return None if any(t["task_id"] == sample["task_id"] for t in self.tasks) else "unknown task"

    def group(self, sample):
        return sample["language"]

    def program_key(self, sample):
        return program_hash(sample["task_id"], sample["completion"])

    def grade(self, samples, workers):
        for key, s in samples:
            task = next(t for t in self.tasks if t["task_id"] == s["task_id"])
            self.executed.append(s["task_id"])
            out = run_program("python", task["prompt"] + s["completion"] + "\n" + task["test"],
                              limits=Limits(timeout_s=5))
            yield key, Verdict("pass" if out.status == "ok" else "wrong_answer", out.stderr[-200:])


def toy_tasks(count: int) -> list[dict]:
    tasks = []
    for i in range(count):
        tasks.append({"task_id": f"toy/{i}", "prompt": f"def f{i}(x):\n", "language": "python",
                      "stop": ["\ndef "], "entry_point": f"f{i}", "test": f"assert f{i}(1) == {i + 1}\n"})
    return tasks


class ScriptedBackend:
    """Writes `return x + i` for task i (wrong for odd i), records every call, can fail on cue."""
    spec = "scripted:x"

    def __init__(self, concurrency=1, fail_after=None):
        self.concurrency = concurrency
        self.calls: list[tuple] = []
        self.fail_after = fail_after
        self.lock = threading.Lock()

    def complete(self, prompt, n, params, on_text=None):
        i = int(prompt[len("def f"):prompt.index("(")])
        with self.lock:
            if self.fail_after is not None and len(self.calls) >= self.fail_after:
                raise KeyboardInterrupt  # as if the user (or the OOM killer) stopped the run
            self.calls.append((prompt, n, params.seed, params.stop))
        body = f"    return x + {i if i % 2 == 0 else 0}\n\ndef junk():\n"
        return [Generation(body, "stop") for _ in range(n)]

    def chat(self, messages, n, params, on_text=None):
        raise AssertionError("not used")

    def close(self):
        pass


def args_for(out, **kw):
    base = dict(model="scripted:x", n=2, temperature=0.8, top_p=1.0, top_k=0, max_tokens=32, seed=0,
                chat=False, runs=1, workers=2, no_progress=True, out=str(out))
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.fixture
def scripted(monkeypatch):
    holder = {}

    def fake_load(spec, **options):
        return holder["backend"]
    monkeypatch.setattr(sampling, "load_backend", fake_load)
    monkeypatch.setattr(sampling, "parse_spec", lambda spec: ("scripted", "x"))
    return holder


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_samples_are_cut_at_stops_graded_and_seeded_per_task(tmp_path, scripted):
    scripted["backend"] = backend = ScriptedBackend()
    suite = ToySuite(toy_tasks(4))
    summary = sampling.evaluate_model(suite, args_for(tmp_path), [1, 2])
    samples = rows(tmp_path / "samples.jsonl")
    assert len(samples) == 8 and {s["completion"] for s in samples} == {"    return x + 0\n", "    return x + 2\n"}
    assert samples[0]["raw"].endswith("def junk():\n")                 # what the model wrote is kept
    assert summary["pass@k"]["1"] == pytest.approx(0.5)               # toy/0 and toy/2 pass, for real
    assert summary["status_counts"] == {"pass": 4, "wrong_answer": 4}
    assert sorted(set(suite.executed)) == ["toy/0", "toy/1", "toy/2", "toy/3"]  # identical programs ran once
    seeds = {c[2] for c in backend.calls}
    assert len(seeds) == 4 and all(c[3] == ("\ndef ",) for c in backend.calls)
    assert json.loads((tmp_path / "sampling.json").read_text())["temperature"] == 0.8


def test_interrupted_run_resumes_without_loss_or_duplicates(tmp_path, scripted):
    suite = ToySuite(toy_tasks(6))
    scripted["backend"] = ScriptedBackend(fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        sampling.evaluate_model(suite, args_for(tmp_path), [1])
    assert len(rows(tmp_path / "samples.jsonl")) == 6        # three tasks' samples were kept
    with (tmp_path / "samples.jsonl").open("a") as f:
        f.write('{"task_id": "toy/3", "language": "py')   # a torn line from a killed writer
    scripted["backend"] = second = ScriptedBackend()
    summary = sampling.evaluate_model(suite, args_for(tmp_path), [1])
    assert sorted(c[0] for c in second.calls) == [t["prompt"] for t in suite.tasks[3:]]  # only what was missing
    keys = [(s["task_id"], s["sample_index"]) for s in rows(tmp_path / "samples.jsonl")]
    assert len(keys) == len(set(keys)) == 12 and summary["n_samples"] == 12
    scripted["backend"] = third = ScriptedBackend()
    more = sampling.evaluate_model(suite, args_for(tmp_path, n=3), [1])  # a larger n adds samples
    assert [c[1] for c in third.calls] == [1] * 6 and more["n_samples"] == 18


def test_seeds_depend_on_the_task_not_on_order_or_threads(tmp_path, scripted):
    scripted["backend"] = a = ScriptedBackend(concurrency=4)
    sampling.evaluate_model(ToySuite(toy_tasks(5)), args_for(tmp_path / "a"), [1])
    scripted["backend"] = b = ScriptedBackend()
    sampling.evaluate_model(ToySuite(toy_tasks(5)[3:]), args_for(tmp_path / "b"), [1])
    seeds_a = {prompt: seed for prompt, _, seed, _ in a.calls}
    assert len(b.calls) == 2 and all(seeds_a[prompt] == seed for prompt, _, seed, _ in b.calls)


def test_changed_settings_are_refused_before_anything_is_written(tmp_path, scripted):
    scripted["backend"] = ScriptedBackend()
    sampling.evaluate_model(ToySuite(toy_tasks(1)), args_for(tmp_path), [1])
    before = (tmp_path / "samples.jsonl").read_bytes()
    with pytest.raises(UsageError, match="temperature: 0.8 there, 0.2 now"):
        sampling.evaluate_model(ToySuite(toy_tasks(2)), args_for(tmp_path, temperature=0.2), [1])
    assert (tmp_path / "samples.jsonl").read_bytes() == before
    for bad, message in ((dict(n=0), "--n must be"), (dict(top_p=0.0), "--top-p must"), (dict(runs=0), "--runs"),
                         (dict(max_tokens=0), "--max-tokens must")):
        with pytest.raises(UsageError, match=message):
            sampling.evaluate_model(ToySuite(toy_tasks(1)), args_for(tmp_path / "x", **bad), [1])
    assert not (tmp_path / "x").exists()


def test_greedy_generates_once_per_task(tmp_path, scripted):
    scripted["backend"] = backend = ScriptedBackend()
    summary = sampling.evaluate_model(ToySuite(toy_tasks(2)), args_for(tmp_path, temperature=0.0, n=5), [1, 5])
    assert [c[1] for c in backend.calls] == [1, 1] and summary["n_samples"] == 10


def test_runs_report_mean_and_spread_of_pass_at_1(tmp_path, scripted):
    scripted["backend"] = backend = ScriptedBackend()
    summary = sampling.evaluate_model(ToySuite(toy_tasks(4)), args_for(tmp_path, runs=3, seed=10), [1])
    assert [r["seed"] for r in summary["runs"]] == [10, 11, 12]
    assert [json.loads((tmp_path / f"run-{r}" / "sampling.json").read_text())["seed"] for r in range(3)] == [10, 11, 12]
    assert summary["pass@1"]["mean"] == pytest.approx(0.5) and summary["pass@1"]["std"] == 0.0
    assert len({c[2] for c in backend.calls}) == 12               # every run draws its own seeds
    assert "pass@1 across runs: 50.0% ± 0.0" in (tmp_path / "summary.md").read_text()
    assert json.loads((tmp_path / "runs.json").read_text())["runs"][2]["run"] == "run-2"


def test_mean_interval():
    m = sampling.mean_interval([0.5, 0.6, 0.7])
    assert m["mean"] == pytest.approx(0.6) and m["std"] == pytest.approx(0.1)
    assert m["ci"] == pytest.approx([0.6 - 4.303 * 0.1 / 3 ** 0.5, 0.6 + 4.303 * 0.1 / 3 ** 0.5])


def test_chat_prompt_for_function_tasks():
    from crucible.languages import get
    message, = sampling.chat_messages(TOY_TASK, get("python"))
    assert message["role"] == "user" and "```python\ndef add_one(x):" in message["content"]
    program_task = {"task_id": "p", "prompt": "Print hello.", "language": "python"}
    assert sampling.chat_messages(program_task, get("python"))[0]["content"] == "Print hello."
    fenced = {**program_task, "prompt": "Print hello.\n\n```python\n"}  # puzzles open the answer's fence
    assert sampling.chat_messages(fenced, get("python"))[0]["content"] == \
        "Print hello.\n\nReply with the program in one ```python code block."


@pytest.fixture(scope="module")
def model_dir():
    return demo_model()


def test_hf_model_on_a_toy_suite_base_and_chat(tmp_path, model_dir):
    suite = ToySuite([TOY_TASK])
    args = args_for(tmp_path / "base", model=f"hf:{model_dir}", temperature=0.0, n=2)
    summary = sampling.evaluate_model(suite, args, [1])
    sample = rows(tmp_path / "base" / "samples.jsonl")[0]
    assert sample["completion"] == "    return x + 1\n\n" and summary["pass@k"]["1"] == 1.0
    summary = sampling.evaluate_model(suite, args_for(tmp_path / "chat", model=f"hf:{model_dir}", temperature=0.0,
                                                      n=1, chat=True), [1])
    sample = rows(tmp_path / "chat" / "samples.jsonl")[0]
    assert sample["completion"] == "\ndef add_one(x):\n    return x + 1\n" and "Sure!" in sample["raw"]
    assert summary["pass@k"]["1"] == 1.0


def test_eval_command_on_humaneval_with_the_tiny_model(tmp_path, model_dir, capsys):
    out = tmp_path / "he"
    argv = ["eval", "humaneval", "--model", f"hf:{model_dir}", "--task-ids", ",".join(DEMO_HUMANEVAL) + ",HumanEval/0",
            "--max-tokens", "48", "--k", "1", "--out", str(out), "--no-progress"]
    assert cli(argv) == 0
    results = rows(out / "results.jsonl")
    passed = {r["task_id"] for r in results if r["passed"]}
    assert passed == set(DEMO_HUMANEVAL)                    # memorized solutions pass the real tests
    assert "| all | 4 | 4 | 75.0%" in capsys.readouterr().out
    assert cli(argv + ["--limit", "2"]) == 0                # a subset of a finished run: nothing new
    assert len(rows(out / "samples.jsonl")) == 4


class Unbatched:
    """The same backend without `complete_many`: one call per task."""

    def __init__(self, inner):
        self.inner, self.spec, self.concurrency = inner, inner.spec, 1

    def complete(self, *a, **kw):
        return self.inner.complete(*a, **kw)

    def close(self):
        pass


def test_greedy_native_batches_tasks_and_matches_one_by_one(tmp_path, monkeypatch):
    from crucible.generate.backends import load_backend as real_load
    from crucible import testing

    testing.random_gpt(testing.tokenizer()).save_pretrained(tmp_path / "gpt", testing.tokenizer())
    native = real_load(f"native:{tmp_path / 'gpt'}")
    monkeypatch.setattr(native, "close", lambda: None)  # used twice here
    calls = []
    many = native.complete_many
    monkeypatch.setattr(native, "complete_many", lambda prompts, params: calls.append(len(prompts)) or many(prompts, params))
    tasks = toy_tasks(5)
    tasks[4] = {**tasks[4], "stop": ["\n"]}  # other stops: a batch of its own
    monkeypatch.setattr(sampling, "parse_spec", lambda spec: ("native", "x"))
    for name, backend in (("batched", native), ("single", Unbatched(native))):
        monkeypatch.setattr(sampling, "load_backend", lambda spec, **o: backend)
        sampling.evaluate_model(ToySuite(tasks), args_for(tmp_path / name, temperature=0.0, max_tokens=12), [1])
    assert sorted(calls) == [1, 4]
    def samples(name):
        return sorted((r["task_id"], r["sample_index"], r["completion"]) for r in rows(tmp_path / name / "samples.jsonl"))
    assert samples("batched") == samples("single") and len(samples("single")) == 10


def test_settings_may_change_until_something_was_sampled(tmp_path, scripted):
    scripted["backend"] = ScriptedBackend(fail_after=0)
    with pytest.raises(KeyboardInterrupt):  # nothing sampled (an unreachable server, say)
        sampling.evaluate_model(ToySuite(toy_tasks(1)), args_for(tmp_path), [1])
    scripted["backend"] = ScriptedBackend()
    sampling.evaluate_model(ToySuite(toy_tasks(1)), args_for(tmp_path, temperature=0.3), [1])
    assert json.loads((tmp_path / "sampling.json").read_text())["temperature"] == 0.3
    assert sampling.settings("openai:m@http://a:1/v1", sampling.GenParams(), False) == \
        sampling.settings("openai:m@http://b:2/v1", sampling.GenParams(), False)  # a new port is the same model
