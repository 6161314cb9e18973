"""SFT: masks decide what is learned, resume repeats the same losses after kill -9, LoRA and
long-context runs, and the result evaluates end to end (native and HF + LoRA)."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from crucible.testing import random_gpt, tokenizer
from crucible.posttrain import pack, sft
from crucible.posttrain.config import SFTConfig
from crucible.posttrain.data import Example
from crucible.posttrain.policy import add_tokens, load_policy
from crucible.sandbox import bwrap_path

TOK = tokenizer()
SOUNDS = {"cat": "meow", "dog": "woof", "cow": "moo", "duck": "quack"}
SRC = str(Path(__file__).resolve().parents[1] / "src")


def conversations(n: int, seed: int = 0) -> list[dict]:
    """User turns carry a random string; the assistant follows a rule (the animal's sound)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        animal = rng.choice(list(SOUNDS))
        junk = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(10))
        rows.append({"messages": [{"role": "user", "content": f"{junk} {animal}"},
                                  {"role": "assistant", "content": SOUNDS[animal]}], "instance_id": i})
    return rows


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sft")
    random_gpt(TOK).save_pretrained(d / "base", TOK)
    (d / "chats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in conversations(96)))
    return d


def cli(*args, check=True):
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "crucible", *map(str, args)], capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"crucible {args[0]} exited {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    return p


def config(out, **kw) -> SFTConfig:
    return SFTConfig(**{"model": "unused", "data": ["unused"], "out": str(out), "lr": 3e-3, "batch_size": 8, "seq_len": 128,
                              "log_every": 100, **kw})


def examples(rows) -> list[Example]:
    return [Example(f"row{i}", messages=r["messages"]) for i, r in enumerate(rows)]


def role_losses(policy, rows) -> dict:
    """Mean loss on user-content tokens and on trained (assistant) tokens."""
    r = policy.renderer
    user_start, user_end = TOK.special_id("user_start"), TOK.special_id("user_end")
    docs = {"assistant": [], "user": []}
    for ex in examples(rows):
        ids, mask = r.example(ex)
        inside, user = False, []
        for t in ids:
            user.append(int(inside and t != user_end))
            inside = (inside or t == user_start) and t != user_end
        docs["assistant"].append((ids, mask))
        docs["user"].append((ids, user))
    out = {}
    with torch.no_grad():
        for role, d in docs.items():
            batch = pack.collate([[i] for i in range(len(d))], d, r.pad_id)
            out[role] = float(-policy.token_logprobs(batch).sum() / batch.n_tokens)
    return out


class TrainEverything:
    """A renderer that trains every token: the control that shows the mask matters."""

    def __init__(self, inner):
        self.inner, self.pad_id = inner, inner.pad_id

    def example(self, ex):
        ids, mask = self.inner.example(ex)
        return ids, [1] * len(mask)


def test_sft_learns_the_rule_not_the_user_strings(workdir, tmp_path):
    rows, held_out = conversations(96), conversations(32, seed=9)
    masked = load_policy(f"native:{workdir / 'base'}", device="cpu")
    before = role_losses(masked, held_out)
    sft.train(config(tmp_path / "a", max_steps=30), masked, examples(rows), [], progress=False)
    after = role_losses(masked, held_out)
    control = load_policy(f"native:{workdir / 'base'}", device="cpu")
    control.renderer = TrainEverything(control.renderer)
    sft.train(config(tmp_path / "b", max_steps=30), control, examples(rows), [], progress=False)
    control_after = role_losses(load_policy(f"native:{tmp_path / 'b'}", device="cpu"), held_out)
    print(f"held-out loss before/after: assistant {before['assistant']:.3f} -> {after['assistant']:.3f}, "
          f"user {before['user']:.3f} -> {after['user']:.3f} (unmasked control: {control_after['user']:.3f})")
    assert after["assistant"] < 0.3 * before["assistant"]           # the rule is learned
    assert after["user"] > 0.95 * before["user"]                    # the strings are not (no gain on them)
    assert control_after["user"] < 0.8 * before["user"]             # unmasked, they would be


def losses_by_step(log: Path) -> dict[int, float]:
    out = {}
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("event") == "train":
            out[rec["step"]] = rec["loss"]            # a re-run step after a resume overwrites
    return out


def test_kill_9_then_resume_repeats_the_same_losses(workdir, tmp_path):
    common = ["--model", f"native:{workdir / 'base'}", "--data", workdir / "chats.jsonl", "--max-steps", 10,
              "--lr", 3e-3, "--batch-size", 4, "--seq-len", 128, "--ckpt-every", 3, "--no-progress"]
    cli("sft", *common, "--out", tmp_path / "whole")
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "crucible", "sft", *map(str, common), "--out", tmp_path / "killed"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (tmp_path / "killed" / "latest").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "summary.json").exists()       # it really was cut short
    cli("sft", "--out", tmp_path / "killed", "--resume", "--no-progress")
    whole, resumed = losses_by_step(tmp_path / "whole" / "log.jsonl"), losses_by_step(tmp_path / "killed" / "log.jsonl")
    assert sorted(resumed) == list(range(1, 11))
    assert resumed == whole


def test_bad_data_exits_2_naming_the_line_and_writes_nothing(workdir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(conversations(1)[0]) + "\n{not json\n")
    p = cli("sft", "--model", f"native:{workdir / 'base'}", "--data", bad, "--out", tmp_path / "run", check=False)
    assert p.returncode == 2
    assert f"{bad}:2" in p.stderr
    assert not (tmp_path / "run").exists()


def test_native_lora_trains_adapters_and_saves_merged_weights(workdir, tmp_path):
    policy = load_policy(f"native:{workdir / 'base'}", lora_rank=4, device="cpu")
    names = [n for n, p in policy.model.named_parameters() if p.requires_grad]
    assert names
    assert all("lora_" in n for n in names)
    sft.train(config(tmp_path / "lora", max_steps=5), policy, examples(conversations(32)), [], progress=False)
    saved = load_policy(f"native:{tmp_path / 'lora'}", device="cpu")
    base = load_policy(f"native:{workdir / 'base'}", device="cpu")
    ids = torch.tensor([TOK.encode("def f(x): return x")])
    with torch.no_grad(), policy.merged():
        live = policy.model(ids)
    assert torch.allclose(saved.model(ids), live, atol=1e-5)
    assert not torch.allclose(saved.model(ids), base.model(ids), atol=1e-4)
    assert (tmp_path / "lora" / "adapter" / "adapter_model.safetensors").is_file()


def test_long_context_with_a_larger_rope_base(workdir, tmp_path):
    long_rows = [{"messages": [{"role": "user", "content": " ".join(["word"] * 120)},
                               {"role": "assistant", "content": "ok"}]} for _ in range(4)]
    policy = load_policy(f"native:{workdir / 'base'}", device="cpu")
    assert policy.model.config.seq_len == 256
    summary = sft.train(config(tmp_path / "long", max_steps=2, seq_len=512, rope_theta=40000.0), policy,
                        examples(long_rows), [], progress=False)
    assert summary["dropped_over_long"] == 0
    saved = json.loads((tmp_path / "long" / "config.json").read_text())
    assert saved["rope_base"] == 40000.0


def test_new_hf_tokens_start_from_an_existing_row(tmp_path):
    from crucible.testing import save_tiny_llama

    policy = load_policy(f"hf:{save_tiny_llama(tmp_path / 'llama', TOK)}", device="cpu")
    [new] = add_tokens(policy, ["<|tool_call|>"], noise=0.01)
    table = policy.model.get_input_embeddings().weight.detach()
    source = table[policy.tokenizer.eos_token_id]
    assert policy.tokenizer.convert_tokens_to_ids("<|tool_call|>") == new
    assert not torch.equal(table[new], source)
    assert torch.allclose(table[new], source, atol=0.1 * float(source.abs().max()))


@pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is required (make setup installs it)")
def test_sft_then_eval_end_to_end_native(workdir, tmp_path):
    cli("sft", "--model", f"native:{workdir / 'base'}", "--data", workdir / "chats.jsonl", "--max-steps", 2,
        "--seq-len", 128, "--out", tmp_path / "sft", "--no-progress")
    cli("eval", "humaneval", "--model", f"native:{tmp_path / 'sft'}", "--limit", 2, "--max-tokens", 8, "--k", 1,
        "--out", tmp_path / "eval", "--no-progress")
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["n_samples"] == 2


@pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is required (make setup installs it)")
def test_sft_lora_then_eval_end_to_end_hf_and_merge(tmp_path):
    from crucible.testing import save_tiny_llama

    base = save_tiny_llama(tmp_path / "llama", TOK)
    (tmp_path / "chats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in conversations(16)))
    cli("sft", "--model", f"hf:{base}", "--data", tmp_path / "chats.jsonl", "--lora-rank", 4, "--max-steps", 2,
        "--seq-len", 128, "--out", tmp_path / "lora", "--no-progress")
    assert (tmp_path / "lora" / "adapter_config.json").is_file()
    cli("eval", "humaneval", "--model", f"hf:{tmp_path / 'lora'}", "--limit", 1, "--max-tokens", 4, "--k", 1,
        "--out", tmp_path / "eval", "--no-progress")
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["n_samples"] == 1
    cli("sft", "merge", "--model", f"hf:{tmp_path / 'lora'}", "--out", tmp_path / "merged")
    adapter = load_policy(f"hf:{tmp_path / 'lora'}", device="cpu")
    merged = load_policy(f"hf:{tmp_path / 'merged'}", device="cpu")
    ids = torch.tensor([TOK.encode("def f(x): return x")])
    with torch.no_grad():
        assert torch.allclose(adapter.model(ids).logits, merged.model(ids).logits, atol=1e-4)
