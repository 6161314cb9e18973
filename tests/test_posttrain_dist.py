"""Post-training on several processes: 2 CPU ranks (torchrun, gloo, DDP) train the rows, losses and
weights of 1 rank with the same global batch; each rank trains its own rows; rank 0 alone writes
the log and the summary; a run stopped on 2 ranks resumes (on 2 ranks, or on 1) to the uninterrupted
losses. One torchrun launch runs SFT, DPO and GRPO (this file is its script: `worker` below, each
rank saving what it trained and its final weights) and stops an SFT run, which a second launch
resumes through the CLI.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from crucible.posttrain import dpo, grpo, sft
from crucible.posttrain.config import DPOConfig, GRPOConfig, SFTConfig
from crucible.posttrain.data import load_mixture
from crucible.posttrain.policy import load_policy
from crucible.posttrain.run import step_shares
from crucible.sandbox import bwrap_path
from crucible.testing import random_gpt, tokenizer

SRC = str(Path(__file__).resolve().parents[1] / "src")
TOK = tokenizer()
SOUNDS = {"cat": "meow", "dog": "woof", "cow": "moo", "duck": "quack"}
PUZZLES = [{"id": "seven", "prompt": "Print the number seven.", "answer": "7", "difficulty": "easy"},
           {"id": "three", "prompt": "Print the number three.", "answer": "3", "difficulty": "easy"}]
# the SFT run every test here compares (1 rank, 2 ranks, FSDP2, stopped and resumed)
SFT_SETTINGS = {"pack": False, "lr": 3e-3, "batch_size": 8, "micro_batch": 2, "seq_len": 128, "max_steps": 4, "log_every": 1,
             "val_fraction": 0.1, "device": "cpu"}


BASES = {"native": "native:{d}/base", "hf": "hf:{d}/llama"}     # crucible's GPT; a tiny HF Llama


def sft_config(d: Path, out, kind: str = "native", **kw) -> SFTConfig:
    """The SFT run of these tests (its saved config is one the CLI's --resume can continue)."""
    return SFTConfig(model=BASES[kind].format(d=d), data=[str(d / "chats.jsonl")], out=str(out),
                     **{**SFT_SETTINGS, **kw})


def dpo_config(out) -> DPOConfig:
    return DPOConfig(model="unused", data=["unused"], out=str(out), lr=1e-3, batch_size=4, micro_batch=1,
                     max_steps=3, log_every=100, device="cpu")


def grpo_config(out) -> GRPOConfig:
    return GRPOConfig(model="unused", out=str(out), suite="tasks", lr=3e-3, batch_size=8, micro_batch=4,
                      max_steps=3, group_size=4, tasks_per_step=2, max_new_tokens=8, log_every=100, device="cpu")


def write_inputs(d: Path) -> None:
    import random

    from crucible.testing import save_tiny_llama

    random_gpt(TOK).save_pretrained(d / "base", TOK)
    save_tiny_llama(d / "llama", TOK)
    rng = random.Random(0)
    chats, pairs = [], []
    for i in range(40):
        animal = rng.choice(list(SOUNDS))
        junk = "".join(rng.choice("abcdefghij") for _ in range(rng.randrange(3, 12)))
        chats.append({"messages": [{"role": "user", "content": f"{junk} {animal}"},
                                   {"role": "assistant", "content": SOUNDS[animal]}]})
        other = rng.choice([x for x in SOUNDS if x != animal])
        pairs.append({"prompt": f"The {animal} says", "chosen": " " + SOUNDS[animal], "rejected": " " + SOUNDS[other]})
    (d / "chats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chats))
    (d / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pairs[:16]))
    (d / "tasks.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PUZZLES))
    (d / "lengths.py").write_text("def length(task, completion):\n    return len(completion) / 40\n")


def record_rows(policy) -> list:
    """Every row (its input ids) the policy's SFT loss sees, in order."""
    seen, loss_sum = [], policy.sft_loss_sum

    def recording(batch, model=None):
        seen.extend(batch.input_ids.tolist())
        return loss_sum(batch, model)

    policy.sft_loss_sum = recording
    return seen


def run_sft(d: Path, out: Path, kind: str = "native", *, resume: bool = False, stop_after: int | None = None,
            **kw) -> list:
    cfg = sft_config(d, out, kind, **kw)
    torch.manual_seed(0)         # LoRA's A matrices start random: the same in every run compared
    policy = load_policy(cfg.model, lora_rank=cfg.lora_rank, device="cpu")
    seen = record_rows(policy)
    train, val = load_mixture(cfg.data, seed=0, val_fraction=cfg.val_fraction)
    sft.train(cfg, policy, train, val, resume=resume, stop_after=stop_after, progress=False)
    return seen


def run_dpo(d: Path, out: Path) -> None:
    pairs, _ = load_mixture([str(d / "pairs.jsonl")], pairs=True)
    dpo.train(dpo_config(out), load_policy(f"native:{d / 'base'}", device="cpu"), pairs, [], progress=False)


def run_grpo(d: Path, out: Path):
    from crucible.eval.suites import load_suite
    from crucible.posttrain.rewards import load_reward_fn

    suite = load_suite("puzzles", language="python", tasks_file=str(d / "tasks.jsonl"))[0]
    policy = load_policy(f"native:{d / 'base'}", device="cpu")
    grpo.train(grpo_config(out), policy, suite, [load_reward_fn(f"{d / 'lengths.py'}:length")], progress=False,
               workers=2)
    return policy


def worker(d: Path, out: Path) -> None:
    """One rank of the torchrun launch: SFT, DPO and GRPO (GRPO only with bubblewrap), each rank
    saving its trained rows and final weights under OUT/ranks."""
    from safetensors.torch import save_file

    rank = int(os.environ["RANK"])
    (out / "ranks").mkdir(parents=True, exist_ok=True)
    rows = run_sft(d, out / "sft")
    (out / "ranks" / f"sft_rows_{rank}.json").write_text(json.dumps(rows))
    run_sft(d, out / "sft_fsdp", dist="fsdp")
    run_sft(d, out / "sft_hf_fsdp", "hf", dist="fsdp")
    run_sft(d, out / "sft_lora", lora_rank=4)
    run_sft(d, out / "cut", stop_after=2)          # the CLI resumes it (`runs`)
    run_dpo(d, out / "dpo")
    if bwrap_path() is not None:
        policy = run_grpo(d, out / "grpo")
        save_file({n: p.detach().contiguous() for n, p in policy.model.state_dict().items()},
                  str(out / "ranks" / f"grpo_weights_{rank}.safetensors"))
    from crucible.train import dist

    dist.cleanup()


def torchrun(*args, timeout=300) -> None:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Inputs, the 1-rank reference runs (in process) and the 2-rank runs (torchrun)."""
    d = tmp_path_factory.mktemp("dist")
    write_inputs(d)
    one = d / "one"
    rows_1 = run_sft(d, one / "sft")
    run_sft(d, one / "sft_hf", "hf")
    run_sft(d, one / "sft_lora", lora_rank=4)
    run_dpo(d, one / "dpo")
    torchrun(__file__, d, d / "two")
    torchrun("-m", "crucible", "sft", "--out", d / "two" / "cut", "--resume", "--no-progress")
    return d, rows_1


def log_of(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def train_losses(run: Path) -> dict[int, float]:
    """step -> logged loss (a step re-run after a resume overwrites)."""
    return {r["step"]: r["loss"] for r in log_of(run) if r["event"] == "train"}


def weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_each_rank_draws_its_own_share_of_every_step():
    cfg = SFTConfig(model="x", data=["x"], out="x", batch_size=8, micro_batch=2, seed=3)
    one = step_shares(20, cfg, start=4)
    ranks = [step_shares(20, cfg, 4, rank, 2) for rank in (0, 1)]
    for _ in range(3):
        whole, position = next(one)
        (left, left_pos), (right, right_pos) = (next(r) for r in ranks)
        assert [len(c) for c in left + right] == [2, 2, 2, 2]
        assert not set(sum(left, [])) & set(sum(right, []))
        assert left + right == whole
        assert left_pos == position
        assert right_pos == position


def test_a_batch_that_does_not_split_over_the_ranks_is_refused(monkeypatch):
    from crucible.train.config import ConfigError

    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg = SFTConfig(model="x", data=["x"], out="x", batch_size=8)
    assert cfg.rows_per_forward == 4          # each rank: half the batch ...
    assert cfg.grad_accum == 1                # ... in one forward
    cfg.validate()
    for bad in (dict(batch_size=7), dict(batch_size=8, micro_batch=3), dict(dist="fsdp", lora_rank=4)):
        with pytest.raises(ConfigError):
            SFTConfig(model="x", data=["x"], out="x", **bad).validate()


def test_two_ranks_train_the_rows_losses_and_weights_of_one(runs):
    d, rows_1 = runs
    two = d / "two" / "sft"
    rows = [json.loads((d / "two" / "ranks" / f"sft_rows_{r}.json").read_text()) for r in (0, 1)]
    assert [len(r) for r in rows] == [4 * 4, 4 * 4]      # 4 steps x 4 rows on each rank
    for step in range(4):
        left, right = (tuple(map(tuple, r[4 * step:4 * step + 4])) for r in rows)
        assert not set(left) & set(right)                  # disjoint rows within the step
        assert sorted(left + right) == sorted(map(tuple, rows_1[8 * step:8 * step + 8]))
    losses_1, losses_2 = train_losses(d / "one" / "sft"), train_losses(two)
    assert sorted(losses_2) == [1, 2, 3, 4]
    assert losses_2 == pytest.approx(losses_1, abs=1e-5)
    assert losses_1[4] < losses_1[1]                        # it trained
    final_1, final_2 = weights(d / "one" / "sft" / "model.safetensors"), weights(two / "model.safetensors")
    assert final_1.keys() == final_2.keys()
    assert all(torch.allclose(final_1[k], final_2[k], atol=1e-5) for k in final_1)
    summary_1 = json.loads((d / "one" / "sft" / "summary.json").read_text())
    summary_2 = json.loads((two / "summary.json").read_text())
    assert summary_2["tokens"] == summary_1["tokens"]
    assert summary_2["val_loss"] == pytest.approx(summary_1["val_loss"], abs=1e-5)


def test_fsdp2_trains_what_ddp_trains(runs):
    d, _ = runs
    ddp, fsdp = d / "two" / "sft", d / "two" / "sft_fsdp"
    assert train_losses(fsdp) == pytest.approx(train_losses(ddp), abs=1e-5)
    final_ddp, final_fsdp = weights(ddp / "model.safetensors"), weights(fsdp / "model.safetensors")
    assert final_fsdp.keys() == final_ddp.keys()        # gathered from the shards, saved whole
    assert all(torch.allclose(final_ddp[k], final_fsdp[k], atol=1e-5) for k in final_ddp)
    assert (fsdp / "step_000004" / "trainer" / "optimizer_rank1.pt").is_file()   # sharded optimizer state


def test_fsdp2_on_an_hf_model_trains_what_one_rank_trains(runs):
    d, _ = runs
    one, fsdp = d / "one" / "sft_hf", d / "two" / "sft_hf_fsdp"
    assert train_losses(fsdp) == pytest.approx(train_losses(one), abs=1e-5)
    final_1, final_2 = weights(one / "model.safetensors"), weights(fsdp / "model.safetensors")
    assert final_2.keys() == final_1.keys()
    assert all(torch.allclose(final_1[k], final_2[k], atol=1e-5) for k in final_1)


def test_lora_under_ddp_trains_what_one_rank_trains(runs):
    d, _ = runs
    one, two = d / "one" / "sft_lora", d / "two" / "sft_lora"
    assert train_losses(two) == pytest.approx(train_losses(one), abs=1e-5)
    final_1, final_2 = weights(one / "model.safetensors"), weights(two / "model.safetensors")   # merged
    assert all(torch.allclose(final_1[k], final_2[k], atol=1e-5) for k in final_1)
    assert (two / "adapter" / "adapter_model.safetensors").is_file()


def test_rank_0_alone_writes_the_log(runs):
    d, _ = runs
    events = [r["event"] for r in log_of(d / "two" / "sft")]
    assert events.count("start") == 1
    assert events.count("end") == 1
    assert [r["step"] for r in log_of(d / "two" / "sft") if r["event"] == "train"] == [1, 2, 3, 4]
    assert len(json.loads((d / "two" / "sft" / "run_config.json").read_text())) > 0
    assert not list((d / "two" / "sft").glob("*.tmp"))


def test_stop_on_two_ranks_then_resume_repeats_the_losses(runs, tmp_path):
    d, _ = runs
    whole, resumed = train_losses(d / "two" / "sft"), train_losses(d / "two" / "cut")
    assert [r["step"] for r in log_of(d / "two" / "cut") if r["event"] == "train"] == [1, 2, 3, 4]
    assert resumed == whole
    # the checkpoint of 2 ranks at step 2, resumed by 1 rank: the data position is global
    import shutil

    cut = tmp_path / "cut"
    shutil.copytree(d / "two" / "cut", cut)
    (cut / "latest").write_text("step_000002\n")
    run_sft(d, cut, resume=True)
    steps = [r for r in log_of(cut) if r["event"] == "train"]
    assert [r["step"] for r in steps[-2:]] == [3, 4]
    assert [r["loss"] for r in steps[-2:]] == pytest.approx([whole[3], whole[4]], abs=1e-5)


def test_dpo_on_two_ranks_logs_the_losses_of_one(runs):
    d, _ = runs
    one, two = log_of(d / "one" / "dpo"), log_of(d / "two" / "dpo")
    steps_1, steps_2 = ([r for r in log if r["event"] == "train"] for log in (one, two))
    assert [r["step"] for r in steps_2] == [1, 2, 3]
    assert [r["loss"] for r in steps_2] == pytest.approx([r["loss"] for r in steps_1], abs=1e-5)
    assert [r["margin"] for r in steps_2] == pytest.approx([r["margin"] for r in steps_1], abs=1e-5)
    # step 1's margins are 0 up to rounding (policy == reference), so its accuracy is a coin toss
    assert [r["accuracy"] for r in steps_2[1:]] == [r["accuracy"] for r in steps_1[1:]]
    cached_1 = json.loads((d / "one" / "dpo" / dpo.REFERENCE).read_text())
    cached_2 = json.loads((d / "two" / "dpo" / dpo.REFERENCE).read_text())
    assert cached_2["key"] == cached_1["key"]
    assert torch.allclose(torch.tensor(cached_2["logprobs"]), torch.tensor(cached_1["logprobs"]), atol=1e-6)


@pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is required (make setup installs it)")
def test_grpo_on_two_ranks_logs_rewards_once_and_keeps_the_ranks_equal(runs, tmp_path):
    d, _ = runs
    log = log_of(d / "two" / "grpo")
    steps = [r for r in log if r["event"] == "train"]
    assert [r["step"] for r in steps] == [1, 2, 3]
    assert [r["event"] for r in log].count("end") == 1
    assert all(r["trained_tokens"] > 0 for r in steps)
    rank_0, rank_1 = (weights(d / "two" / "ranks" / f"grpo_weights_{r}.safetensors") for r in (0, 1))
    assert all(torch.equal(rank_0[k], rank_1[k]) for k in rank_0)
    base = weights(d / "base" / "model.safetensors")
    assert any(not torch.equal(rank_0[k], base[k]) for k in base)    # it trained
    run_grpo(d, tmp_path / "one")         # before the first update, rank 0 samples what 1 rank samples
    first_1 = next(r for r in log_of(tmp_path / "one") if r["event"] == "train")
    assert steps[0]["reward_mean"] == first_1["reward_mean"]
    assert steps[0]["trained_tokens"] == first_1["trained_tokens"]
    assert steps[0]["loss"] == pytest.approx(first_1["loss"], abs=1e-5)


if __name__ == "__main__":       # a rank of the torchrun launch: INPUTS_DIR OUT_DIR
    worker(Path(sys.argv[1]), Path(sys.argv[2]))
