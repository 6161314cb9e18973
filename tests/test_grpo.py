"""GRPO: rewards come from the sandboxed grader (reward hacks earn 0, infrastructure failures drop
the group), user reward functions add in, advantages and the loss are as specified, and a tiny
model's reward rises on a small verifiable task."""

import json
import random
from types import SimpleNamespace

import pytest
import torch

from crucible.grade import Verdict
from crucible.metrics import bootstrap_ci
from crucible.testing import random_gpt, tokenizer
from crucible.posttrain import grpo, rollout, sft
from crucible.posttrain.config import GRPOConfig, SFTConfig
from crucible.posttrain.data import Example
from test_dpo import logged_steps
from crucible.posttrain.losses import group_advantages, grpo_loss_sum
from crucible.posttrain.policy import load_policy
from crucible.posttrain.rewards import RewardError, grade, load_reward_fn, rewards
from crucible.sandbox import bwrap_path
from crucible.tasks.common import Task
from crucible.train.dist import DistInfo

needs_sandbox = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is required (make setup installs it)")
TOK = tokenizer()
PUZZLES = [{"id": "seven", "prompt": "Print the number seven.", "answer": "7", "difficulty": "easy"},
           {"id": "three", "prompt": "Print the number three.", "answer": "3", "difficulty": "easy"}]


def puzzle_suite(tmp_path):
    from crucible.eval.suites import load_suite

    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PUZZLES))
    return load_suite("puzzles", language="python", tasks_file=str(path))[0]


def test_advantages_are_centred_per_group_and_optionally_scaled():
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0]])
    a = group_advantages(r)
    assert torch.allclose(a.sum(-1), torch.zeros(2))
    assert torch.allclose(a[1], torch.tensor([0.25, 0.25, 0.25, -0.75]))
    assert torch.allclose(group_advantages(r, scale=True)[0], torch.tensor([1.0, -1.0, -1.0, 1.0]), atol=1e-5)


def test_clipping_stops_the_gradient_beyond_the_trust_region():
    logp = torch.tensor([[0.5, -0.5]], requires_grad=True)
    old = torch.zeros(1, 2)
    grpo_loss_sum(logp, old, torch.tensor([1.0]), torch.ones(1, 2), clip_low=0.2, clip_high=0.28).backward()
    assert logp.grad[0, 0] == 0           # ratio e^0.5 > 1.28 with a positive advantage: clipped
    assert logp.grad[0, 1] < 0            # ratio e^-0.5 inside for a positive advantage: pushed up


def test_kl_term_vanishes_at_the_reference_and_grows_away_from_it():
    logp = torch.zeros(1, 3)
    zero_adv = torch.zeros(1)
    at_ref = grpo_loss_sum(logp, logp, zero_adv, torch.ones(1, 3), ref_logprobs=logp, kl_beta=1.0)
    away = grpo_loss_sum(logp, logp, zero_adv, torch.ones(1, 3), ref_logprobs=logp - 1.0, kl_beta=1.0)
    assert float(at_ref) == 0.0
    assert float(away) > 0.0


def test_reward_functions_load_with_weights_and_none_means_not_applicable(tmp_path):
    f = tmp_path / "my_rewards.py"
    f.write_text("def short(task, completion):\n    return None if task.task_id == 'skip' else -len(completion)\n")
    fn = load_reward_fn(f"{f}:short:0.5")
    passed, failed = Verdict("pass"), Verdict("wrong_answer")
    a, skip = Task("a", "p", "python"), Task("skip", "p", "python")
    got = rewards([a, skip, a], ["xx", "yyyy", "z"], [passed, passed, failed], [fn])
    assert got == [0.0, 1.0, -0.5]
    with pytest.raises(RewardError):
        load_reward_fn(f"{f}:missing")


def test_an_infrastructure_failure_gives_no_reward_not_a_zero():
    a = Task("a", "p", "python")
    got = rewards([a, a], ["x", "y"], [Verdict("sandbox_error"), Verdict("timeout")])
    assert got == [None, 0.0]


def test_a_group_with_an_infrastructure_failure_is_dropped_and_counted(tmp_path, monkeypatch):
    """One sandbox error in a group: the group is left out of training and counted as dropped."""
    suite = puzzle_suite(tmp_path)
    task = suite.tasks[0]
    groups = [[rollout.Rollout(task, [1], [2, 3], [0, 0], [0.0, 0.0], f"print({d})") for d in (7, 1)]]
    statuses = iter([[Verdict("sandbox_error"), Verdict("pass")]])
    monkeypatch.setattr(grpo.reward_lib, "grade", lambda *a, **k: next(statuses))
    monkeypatch.setattr(grpo.rollout, "sample", lambda *a, **k: groups)
    logged = []
    run = SimpleNamespace(state=SimpleNamespace(step=0, position=0, info=DistInfo()), log=lambda rec, line=None: logged.append(rec))
    cfg = GRPOConfig(model="x", out=str(tmp_path), suite="tasks")
    rec = grpo.grpo_step(cfg, None, run, suite, [], [task], None, grpo.StepData(), 1, None)
    assert rec["dropped_groups"] == 1
    assert rec["trained_tokens"] == 0
    assert run.state.step == 1               # the step counts, with nothing trained


@needs_sandbox
def test_reward_hacks_earn_zero_through_the_grpo_reward():
    from test_reward_hacks import HACKS

    from crucible.eval.suites import load_suite
    from crucible.tasks import humaneval

    suite = load_suite("humaneval")[0]
    by_id = {t.task_id: t for t in suite.tasks}
    tasks = [by_id[t] for t, _ in HACKS.values()]
    completions = [c for _, c in HACKS.values()]
    with suite.pool(2) as pool:
        verdicts = grade(suite, tasks, completions, workers=2, pool=pool)
        earned = rewards(tasks, completions, verdicts)
        canonical = humaneval.load_problems()["HumanEval/0"]["canonical_solution"]
        solved = [by_id["HumanEval/0"]]
        solved_reward = rewards(solved, [canonical], grade(suite, solved, [canonical], workers=2, pool=pool))
    assert all(r == 0.0 for r in earned), {n: r for n, r in zip(HACKS, earned) if r != 0.0}
    assert solved_reward == [1.0]


def mean_reward(policy, suite, samples_per_task: int) -> list[float]:
    groups = rollout.sample(policy, suite.tasks, samples_per_task, temperature=1.0, max_new_tokens=12, seed=123)
    values, _ = grpo.score_groups(groups, suite, [])
    return [v for g in values for v in g]


@needs_sandbox
def test_grpo_raises_the_reward_of_a_tiny_model(tmp_path):
    """SFT teaches the answer format (print(D) for a random digit D), then GRPO on two puzzles whose
    answers are 7 and 3 must raise the sandbox-graded reward: the final interval lies above the first."""
    suite = puzzle_suite(tmp_path)
    random_gpt(TOK).save_pretrained(tmp_path / "base", TOK)
    rng = random.Random(0)
    warmup = [Example(f"x{i}", prompt=t.prompt, completion=f"print({rng.randrange(10)})\n```")
              for i, t in enumerate(rng.choice(suite.tasks) for _ in range(160))]
    policy = load_policy(f"native:{tmp_path / 'base'}", device="cpu")
    sft.train(SFTConfig(model="x", out=str(tmp_path / "sft"), lr=3e-3, batch_size=16, seq_len=256,
                              max_steps=40, pack=False, log_every=100), policy, warmup, [], progress=False)
    before = mean_reward(policy, suite, 32)
    cfg = GRPOConfig(model="x", out=str(tmp_path / "rl"), suite="tasks", lr=3e-3, batch_size=16, max_steps=15,
                          group_size=8, tasks_per_step=2, max_new_tokens=12, seed=0, log_every=100)
    summary = grpo.train(cfg, policy, suite, [], progress=False)
    after = mean_reward(policy, suite, 32)
    lo_before, hi_before = bootstrap_ci(before)
    lo_after, hi_after = bootstrap_ci(after)
    print(f"reward before {sum(before) / len(before):.3f} [{lo_before:.3f}, {hi_before:.3f}], "
          f"after {sum(after) / len(after):.3f} [{lo_after:.3f}, {hi_after:.3f}]")
    assert summary["steps"] == 15
    assert lo_after > hi_before
    log = [json.loads(line) for line in (tmp_path / "rl" / "log.jsonl").read_text().splitlines()]
    steps = [r for r in log if r.get("event") == "train"]
    assert all(0 <= r["zero_variance_share"] <= 1 for r in steps)
    assert all(r["logprob_mismatch"] < 1e-3 for r in steps if r["trained_tokens"])


STEP_KEYS = ("reward_mean", "loss", "trained_tokens")


@needs_sandbox
def test_stop_then_resume_repeats_the_same_rewards_and_losses(tmp_path):
    """--stop-after 2 then --resume: the same tasks, samples (seeded by step), sandbox rewards and
    losses as the uninterrupted run, on CPU. A length reward gives every group a spread, so every
    step trains."""
    suite = puzzle_suite(tmp_path)
    random_gpt(TOK).save_pretrained(tmp_path / "base", TOK)
    lengths = tmp_path / "lengths.py"
    lengths.write_text("def length(task, completion):\n    return len(completion) / 40\n")
    reward_fns = [load_reward_fn(f"{lengths}:length")]

    def run(out, **kw):
        cfg = GRPOConfig(model="x", out=str(out), suite="tasks", lr=3e-3, batch_size=8, micro_batch=4, max_steps=4,
                         group_size=4, tasks_per_step=2, max_new_tokens=8, seed=0, log_every=100)
        policy = load_policy(f"native:{tmp_path / 'base'}", device="cpu")
        return grpo.train(cfg, policy, suite, reward_fns, progress=False, workers=2, **kw)

    run(tmp_path / "whole")
    assert run(tmp_path / "cut", stop_after=2)["stopped_at"] == 2
    assert sorted(logged_steps(tmp_path / "cut" / "log.jsonl", STEP_KEYS)) == [1, 2]
    summary = run(tmp_path / "cut", resume=True)
    whole, resumed = (logged_steps(tmp_path / name / "log.jsonl", STEP_KEYS) for name in ("whole", "cut"))
    assert summary["steps"] == 4
    assert all(tokens > 0 for _, _, tokens in whole.values())      # every step really trained
    assert sorted(resumed) == [1, 2, 3, 4]
    assert resumed == whole


@pytest.mark.parametrize("kind", ["native", "hf"])
def test_sampler_log_probs_match_the_trainer_on_the_same_tokens(kind, tmp_path):
    from crucible.testing import save_tiny_llama
    from crucible.posttrain import pack

    if kind == "native":
        random_gpt(TOK).save_pretrained(tmp_path / "m", TOK)
    else:
        save_tiny_llama(tmp_path / "m", TOK)
    policy = load_policy(f"{kind}:{tmp_path / 'm'}", device="cpu")
    task = Task("t", "def add(a, b):", "python", stop=("\n\n",))
    [group] = rollout.sample(policy, [task], 4, temperature=0.7, max_new_tokens=10, seed=5)
    assert all(len(r.ids) == len(r.sampler_logprobs) for r in group)
    assert any(r.ids for r in group)
    batch = pack.collate([[i] for i in range(4)], [r.doc() for r in group], policy.renderer.pad_id)
    with torch.no_grad():
        trainer = policy.token_logprobs(batch, temperature=0.7)
    sampler = grpo.aligned(batch, [r.sampler_logprobs for r in group])
    trained = batch.targets != -1
    assert int(trained.sum()) == sum(len(r.ids) for r in group)
    assert torch.allclose(trainer[trained], sampler[trained], atol=1e-4)
