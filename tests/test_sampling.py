"""Sample-then-grade (`crucible.eval`): resumable samples.jsonl, prompting modes, --runs, backends given
as objects (a policy in memory included), and `crucible eval --model` end to end."""

from __future__ import annotations

import json
import threading
from contextlib import nullcontext
from dataclasses import dataclass, field

import pytest

from crucible.cli import main as cli
from crucible.eval import EvalError
from crucible.eval.pipeline import evaluate_model
from crucible.eval.runs import mean_interval
from crucible.eval.settings import settings
from crucible.generate.registry import load_backend
from crucible.generate.types import GenParams, Generation
from crucible.grade import Verdict, program_hash
from crucible.testing import DEMO_HUMANEVAL, TOY_TASK, demo_model
from crucible.languages import run_program
from crucible.sandbox import Limits
from crucible.sanitize import truncate_at_stop
from crucible.tasks.common import Task


@dataclass
class ToySuite:
    """A Suite with our own tasks, graded for real: prompt + completion + test, in the sandbox."""
    tasks: list[Task]
    name: str = "toy"
    executed: list[str] = field(default_factory=list)

    def check_sample(self, sample):
        return None if any(t.task_id == sample["task_id"] for t in self.tasks) else "unknown task"

    def group(self, sample):
        return sample["language"]

    def program_key(self, sample):
        return program_hash(sample["task_id"], sample["completion"])

    def grade(self, samples, workers, pool=None):
        for key, s in samples:
            task = next(t for t in self.tasks if t.task_id == s["task_id"])
            self.executed.append(s["task_id"])
            out = run_program("python", task.prompt + s["completion"] + "\n" + task.test,
                              limits=Limits(timeout_s=5))
            yield key, Verdict("pass" if out.status == "ok" else "wrong_answer", out.stderr[-200:])

    def pool(self, workers):
        return nullcontext()


def toy_tasks(count: int) -> list[Task]:
    return [Task(f"toy/{i}", f"def f{i}(x):\n", "python", ("\ndef ",), entry_point=f"f{i}",
                 test=f"assert f{i}(1) == {i + 1}\n") for i in range(count)]


class ScriptedBackend:
    """Writes `return x + i` for task i (wrong for odd i), cut at the stop set as every backend does;
    records every call, can fail on cue."""
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
        body, _ = truncate_at_stop(f"    return x + {i if i % 2 == 0 else 0}\n\ndef junk():\n", params.stop)
        return [Generation(body, "stop") for _ in range(n)]

    def chat(self, messages, n, params, on_text=None):
        raise AssertionError("not used")

    def close(self):
        pass


def run(suite, backend, out, *, n=2, temperature=0.8, seed=0, max_tokens=32, top_p=1.0, chat=False, runs=1,
        ks=(1,)):
    params = GenParams(max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
    return evaluate_model(suite, backend, out, n=n, params=params, chat=chat, runs=runs, ks=ks, workers=2,
                          progress=False)


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_samples_are_cut_at_stops_graded_and_seeded_per_task(tmp_path):
    backend = ScriptedBackend()
    suite = ToySuite(toy_tasks(4))
    summary = run(suite, backend, tmp_path, ks=(1, 2))
    samples = rows(tmp_path / "samples.jsonl")
    assert len(samples) == 8
    assert {s["completion"] for s in samples} == {"    return x + 0\n", "    return x + 2\n"}
    assert "raw" not in samples[0]                                   # the backend's text is the completion
    assert summary["pass@k"]["1"] == pytest.approx(0.5)               # toy/0 and toy/2 pass, for real
    assert summary["status_counts"] == {"pass": 4, "wrong_answer": 4}
    assert sorted(set(suite.executed)) == ["toy/0", "toy/1", "toy/2", "toy/3"]
    assert len(suite.executed) == 4                                   # identical programs ran once
    assert len({c[2] for c in backend.calls}) == 4                    # a seed per task
    assert {c[3] for c in backend.calls} == {("\ndef ",)}             # the task's stop set, asked for
    assert json.loads((tmp_path / "sampling.json").read_text())["temperature"] == 0.8


def test_interrupted_run_resumes_without_loss_or_duplicates(tmp_path):
    suite = ToySuite(toy_tasks(6))
    with pytest.raises(KeyboardInterrupt):
        run(suite, ScriptedBackend(fail_after=3), tmp_path)
    assert len(rows(tmp_path / "samples.jsonl")) == 6        # three tasks' samples were kept
    with (tmp_path / "samples.jsonl").open("a") as f:
        f.write('{"task_id": "toy/3", "language": "py')   # a torn line from a killed writer
    second = ScriptedBackend()
    summary = run(suite, second, tmp_path)
    assert sorted(c[0] for c in second.calls) == [t.prompt for t in suite.tasks[3:]]  # only what was missing
    keys = [(s["task_id"], s["sample_index"]) for s in rows(tmp_path / "samples.jsonl")]
    assert len(keys) == 12
    assert len(set(keys)) == 12
    assert summary["n_samples"] == 12
    third = ScriptedBackend()
    more = run(suite, third, tmp_path, n=3)  # a larger n adds samples
    assert [c[1] for c in third.calls] == [1] * 6
    assert more["n_samples"] == 18


def test_seeds_depend_on_the_task_not_on_order_or_threads(tmp_path):
    a = ScriptedBackend(concurrency=4)
    run(ToySuite(toy_tasks(5)), a, tmp_path / "a")
    b = ScriptedBackend()
    run(ToySuite(toy_tasks(5)[3:]), b, tmp_path / "b")
    seeds_a = {prompt: seed for prompt, _, seed, _ in a.calls}
    assert len(b.calls) == 2
    assert [seed for _, _, seed, _ in b.calls] == [seeds_a[prompt] for prompt, _, _, _ in b.calls]


def test_changed_settings_are_refused_before_anything_is_written(tmp_path):
    run(ToySuite(toy_tasks(1)), ScriptedBackend(), tmp_path)
    before = (tmp_path / "samples.jsonl").read_bytes()
    with pytest.raises(EvalError, match="temperature: 0.8 there, 0.2 now"):
        run(ToySuite(toy_tasks(2)), ScriptedBackend(), tmp_path, temperature=0.2)
    assert (tmp_path / "samples.jsonl").read_bytes() == before


@pytest.mark.parametrize("bad, message", [(dict(n=0), "--n must be"), (dict(top_p=0.0), "--top-p must"),
                                          (dict(runs=0), "--runs"), (dict(max_tokens=0), "--max-tokens must")])
def test_impossible_settings_are_refused_before_anything_is_written(tmp_path, bad, message):
    with pytest.raises(EvalError, match=message):
        run(ToySuite(toy_tasks(1)), ScriptedBackend(), tmp_path / "x", **bad)
    assert not (tmp_path / "x").exists()


def test_greedy_generates_once_per_task(tmp_path):
    backend = ScriptedBackend()
    summary = run(ToySuite(toy_tasks(2)), backend, tmp_path, temperature=0.0, n=5, ks=(1, 5))
    assert [c[1] for c in backend.calls] == [1, 1]
    assert summary["n_samples"] == 10


def test_runs_report_mean_and_spread_of_pass_at_1(tmp_path):
    backend = ScriptedBackend()
    summary = run(ToySuite(toy_tasks(4)), backend, tmp_path, runs=3, seed=10)
    assert [r["seed"] for r in summary["runs"]] == [10, 11, 12]
    assert [json.loads((tmp_path / f"run-{r}" / "sampling.json").read_text())["seed"] for r in range(3)] == [10, 11, 12]
    assert summary["pass@1"]["mean"] == pytest.approx(0.5)
    assert summary["pass@1"]["std"] == 0.0
    assert len({c[2] for c in backend.calls}) == 12               # every run draws its own seeds
    assert "pass@1 across runs: 50.0% ± 0.0" in (tmp_path / "summary.md").read_text()
    assert json.loads((tmp_path / "runs.json").read_text())["runs"][2]["run"] == "run-2"


def test_mean_interval():
    m = mean_interval([0.5, 0.6, 0.7])
    assert m["mean"] == pytest.approx(0.6)
    assert m["std"] == pytest.approx(0.1)
    assert m["ci"] == pytest.approx([0.6 - 4.303 * 0.1 / 3 ** 0.5, 0.6 + 4.303 * 0.1 / 3 ** 0.5])


def test_chat_prompt_for_function_tasks():
    message, = Task(**TOY_TASK).chat_messages()
    assert message["role"] == "user"
    assert "```python\ndef add_one(x):" in message["content"]
    program_task = Task("p", "Print hello.", "python")
    assert program_task.chat_messages()[0]["content"] == "Print hello."
    fenced = Task("p", "Print hello.\n\n```python\n", "python")  # puzzles open the answer's fence
    assert fenced.chat_messages()[0]["content"] == "Print hello.\n\nReply with the program in one ```python code block."


@pytest.fixture(scope="module")
def model_dir():
    return demo_model()


def test_hf_model_on_a_toy_suite_base_and_chat(tmp_path, model_dir):
    suite = ToySuite([Task(**TOY_TASK)])
    hf = load_backend(f"hf:{model_dir}")
    summary = run(suite, hf, tmp_path / "base", temperature=0.0, n=2)
    sample = rows(tmp_path / "base" / "samples.jsonl")[0]
    assert sample["completion"] == "    return x + 1\n\n"
    assert summary["pass@k"]["1"] == 1.0
    summary = run(suite, hf, tmp_path / "chat", temperature=0.0, n=1, chat=True)
    sample = rows(tmp_path / "chat" / "samples.jsonl")[0]
    assert sample["completion"] == "\ndef add_one(x):\n    return x + 1\n"
    assert "Sure!" in sample["raw"]
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


def test_eval_command_refuses_changed_settings_with_exit_2(tmp_path, model_dir, capsys):
    argv = ["eval", "humaneval", "--model", f"hf:{model_dir}", "--task-ids", "HumanEval/53", "--max-tokens", "8",
            "--k", "1", "--out", str(tmp_path), "--no-progress"]
    assert cli(argv) == 0
    capsys.readouterr()
    assert cli(argv + ["--temperature", "0.5"]) == 2
    assert "temperature: 0.0 there, 0.5 now" in capsys.readouterr().err


class CountingBatches:
    """A backend that passes calls to `inner`, counting the prompts of each batched call; with
    `batched=False` it has no `complete_many`, so the sampler makes one call per task."""

    def __init__(self, inner, batched: bool):
        self.inner, self.spec, self.concurrency = inner, inner.spec, 1
        self.batches: list[int] = []
        if batched:
            self.complete_many = self._complete_many

    def complete(self, *a, **kw):
        return self.inner.complete(*a, **kw)

    def _complete_many(self, prompts, params):
        self.batches.append(len(prompts))
        return self.inner.complete_many(prompts, params)

    def close(self):
        pass


def tiny_engine():
    from crucible import testing
    from crucible.model.engine import Engine

    return Engine(testing.random_gpt(testing.tokenizer()), testing.tokenizer(), tools=False)


def test_greedy_native_batches_tasks_and_matches_one_by_one(tmp_path):
    from crucible.generate.native_backend import NativeBackend

    native = NativeBackend(tiny_engine())
    tasks = toy_tasks(5)
    tasks[4] = Task(tasks[4].task_id, tasks[4].prompt, "python", ("\n",), entry_point="f4", test=tasks[4].test)
    batched, single = CountingBatches(native, batched=True), CountingBatches(native, batched=False)
    for name, backend in (("batched", batched), ("single", single)):
        run(ToySuite(tasks), backend, tmp_path / name, temperature=0.0, max_tokens=12)
    assert sorted(batched.batches) == [1, 4]                # other stops: a batch of their own
    def samples(name):
        return sorted((r["task_id"], r["sample_index"], r["completion"]) for r in rows(tmp_path / name / "samples.jsonl"))
    assert samples("batched") == samples("single")
    assert len(samples("single")) == 10


def test_a_policy_in_memory_is_evaluated_as_its_saved_checkpoint(tmp_path):
    from crucible.generate.native_backend import NativeBackend

    engine = tiny_engine()
    engine.model.save_pretrained(tmp_path / "gpt", engine.tokenizer)
    saved = load_backend(f"native:{tmp_path / 'gpt'}")
    live = NativeBackend(engine)
    for name, backend in (("live", live), ("saved", saved)):
        run(ToySuite(toy_tasks(3)), backend, tmp_path / name, temperature=0.9, max_tokens=10, seed=4)
    live_rows, saved_rows = rows(tmp_path / "live" / "samples.jsonl"), rows(tmp_path / "saved" / "samples.jsonl")
    assert [r["completion"] for r in live_rows] == [r["completion"] for r in saved_rows]
    assert len({r["completion"] for r in live_rows}) > 1     # sampled, not one repeated text
    assert json.loads((tmp_path / "live" / "sampling.json").read_text())["model"] == "native:<in memory>"


def test_settings_may_change_until_something_was_sampled(tmp_path):
    with pytest.raises(KeyboardInterrupt):  # nothing sampled (an unreachable server, say)
        run(ToySuite(toy_tasks(1)), ScriptedBackend(fail_after=0), tmp_path)
    run(ToySuite(toy_tasks(1)), ScriptedBackend(), tmp_path, temperature=0.3)
    assert json.loads((tmp_path / "sampling.json").read_text())["temperature"] == 0.3
    assert settings("openai:m@http://a:1/v1", GenParams(), False) == \
        settings("openai:m@http://b:2/v1", GenParams(), False)  # a new port is the same model
