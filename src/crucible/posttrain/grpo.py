"""RL from execution rewards (GRPO with DAPO's choices): `crucible grpo`.

Per step:
    sample   `tasks_per_step` tasks (a seeded cycle through the suite), `group_size` rollouts each
             from the live policy (rollout.py)
    grade    every completion in the sandbox, in memory, graders kept warm for the run (rewards.py):
             pass 1, fail 0 (`Task.reward`), infrastructure failure -> the whole group is dropped
             and counted, never scored as the model's fault
    train    advantages r − group mean (optionally / std); groups whose rewards are all equal carry
             no signal and are left out (DAPO's dynamic-sampling filter; their share is reported);
             one crucible.train.loop.train_step: each micro-batch's clipped-ratio loss is its mean
             over trained tokens, weighed by its token count, so the step's loss is the mean over
             every token in the step (DAPO's token-level normalisation); optional KL to the
             reference (kl_beta > 0 only: then the starting weights, or the adapters switched off)
    report   mean reward with its interval, share of zero-variance groups, dropped groups, tokens/s,
             seconds spent sampling / grading / training, and the mean |sampler − trainer| log-prob
             of the same tokens.

One policy update per batch of rollouts, so the "old" log-probs of the ratio are the trainer's own
at the time of the update (ratio 1, the clip inactive on the first pass); `dtype` sets the
trainer's compute (float32 or bf16 autocast), which the mismatch figure makes visible.

Several processes (torchrun, DDP): rank 0 samples and grades every rollout of the step and
broadcasts them with their rewards; each rank then trains its share of the kept rows, and DDP
averages the gradients. Sampling on one rank is the simpler correct choice: the ranks' weights are
equal, so rank 0's samples are the ones a 1-rank run draws (same seed, same step), no sandbox pool
runs twice, and no rank's sampling seed has to be derived; the cost is that sampling and grading
do not speed up with more ranks (the other ranks wait). A rank left without rows (fewer kept rows
than ranks) runs one 0-token micro-batch so its gradient reduction still meets the others'.
Tested on 2 CPU ranks (tests/test_posttrain_dist.py): rewards logged once, ranks' weights equal.

Not covered: several updates per batch (PPO epochs), asynchronous sampling, multi-turn tool rollouts
with per-turn rewards.
"""

from __future__ import annotations

import copy
import random
import time
from contextlib import nullcontext

import torch

from crucible.posttrain import pack, rewards as reward_lib, rollout
from crucible.posttrain.losses import group_advantages, grpo_loss_sum
from crucible.posttrain.run import Run, interval, shard
from crucible.train import dist, loop


def tasks_for_step(tasks: list[dict], per_step: int, seed: int, step: int) -> list[dict]:
    """A seeded cycle through the tasks: each epoch a new shuffle; a pure function of the step."""
    chosen = []
    for k in range(step * per_step, (step + 1) * per_step):
        epoch, i = divmod(k, len(tasks))
        order = list(range(len(tasks)))
        random.Random(seed * 7919 + epoch).shuffle(order)
        chosen.append(tasks[order[i]])
    return chosen


def score_groups(groups: list[list[rollout.Rollout]], suite, reward_fns, workers: int = 4, pool=None):
    """(rewards per group, verdicts per group): None rewards where the grader's infrastructure failed."""
    flat = [r for g in groups for r in g]
    verdicts = reward_lib.grade(suite, [r.task for r in flat], [r.text for r in flat], workers, pool)
    values = reward_lib.rewards([r.task for r in flat], [r.text for r in flat], verdicts, reward_fns)
    out, vout, i = [], [], 0
    for g in groups:
        out.append(values[i:i + len(g)])
        vout.append(verdicts[i:i + len(g)])
        i += len(g)
    return out, vout


def aligned(batch: pack.Batch, per_doc_values: list[list[float]]) -> torch.Tensor:
    """Per-token values of each row's trained tokens (in order) laid out like batch.targets."""
    out = torch.zeros(batch.targets.shape, dtype=torch.float32)
    for row, values in enumerate(per_doc_values):
        where = (batch.targets[row] != pack.IGNORE).nonzero().squeeze(-1)
        out[row, where] = torch.tensor(values[:len(where)], dtype=torch.float32)
    return out


class StepData:
    """What the loss of one GRPO step needs, per micro-batch (the loop's loss_fn reads it).
    `idle`: this rank has no rows this step and runs one untrained (0-token) micro-batch, so that
    its DDP gradient reduction still meets the other ranks'."""

    def __init__(self):
        self.batches, self.advantages, self.refs, self.sampler, self.gaps = [], [], [], [], []
        self.idle = False


def train(cfg, policy, suite, reward_fns=(), *, resume: bool = False, stop_after: int | None = None,
          progress: bool = True, workers: int = 4) -> dict:
    torch.manual_seed(cfg.seed)
    tasks = list(suite.tasks)
    total = cfg.max_steps or max(1, -(-len(tasks) // cfg.tasks_per_step))   # default: one pass over the tasks
    reference = None
    if cfg.kl_beta and not policy.lora_rank:
        reference = copy.deepcopy(policy.model).eval().requires_grad_(False)
    data = StepData()

    def loss_fn(model, k):   # mean over micro-batch k's trained tokens
        b = data.batches[k]
        lp = policy.token_logprobs(b, cfg.temperature, model=model)
        trained = (b.targets != pack.IGNORE).to(lp.device).float()
        if not data.idle:
            data.gaps.append(((lp.detach().cpu() - data.sampler[k]).abs() * trained.cpu()).sum().item())
        loss = grpo_loss_sum(lp, lp.detach(), data.advantages[k].to(lp.device), trained, clip_low=cfg.clip_low,
                             clip_high=cfg.clip_high, ref_logprobs=data.refs[k], kl_beta=cfg.kl_beta)
        return loss / max(b.n_tokens, 1)

    run = Run(cfg, policy, loss_fn, total, resume=resume, progress=progress, desc="grpo")
    run.log({"event": "start", "suite": suite.name, "tasks": len(tasks), "steps": total,
             "group_size": cfg.group_size, "tasks_per_step": cfg.tasks_per_step},
            f"grpo on {suite.name}: {len(tasks)} tasks, {cfg.tasks_per_step} x {cfg.group_size} samples per step, "
            f"{total} steps")
    history = []
    master = run.state.info.master
    with suite.pool(workers) if master else nullcontext() as pool:   # graders kept warm across steps
        while not loop.finished(run.state):
            step_tasks = tasks_for_step(tasks, cfg.tasks_per_step, cfg.seed, run.state.step)
            history.append(grpo_step(cfg, policy, run, suite, reward_fns, step_tasks, reference, data, workers, pool))
            run.bar.update(1)
            if run.checkpoint_or_stop(stop_after):
                return {"stopped_at": run.state.step, "history": history}
    summary = {"method": "grpo", "suite": suite.name, "steps": run.state.step,
               "first_reward": history[0]["reward_mean"] if history else None,
               "last_reward": history[-1]["reward_mean"] if history else None,
               "first_reward_ci": history[0]["reward_ci"] if history else None,
               "last_reward_ci": history[-1]["reward_ci"] if history else None,
               "dropped_groups": sum(h["dropped_groups"] for h in history)}
    return run.finish(summary)


def grpo_step(cfg, policy, run, suite, reward_fns, tasks, reference, data: StepData, workers: int,
              pool=None) -> dict:
    from crucible.metrics import bootstrap_ci

    state, info = run.state, run.state.info
    t0 = time.perf_counter()
    groups = group_rewards = None
    if info.master:     # rank 0 samples and grades; every rank gets the rollouts and rewards
        groups = rollout.sample(policy, tasks, cfg.group_size, temperature=cfg.temperature,
                                max_new_tokens=cfg.max_new_tokens, seed=cfg.seed * 100_003 + state.step,
                                tools=cfg.tools)
    t1 = time.perf_counter()
    if info.master:
        group_rewards, _ = score_groups(groups, suite, reward_fns, workers, pool)
    groups, group_rewards = dist.broadcast_object((groups, group_rewards), info)
    t2 = time.perf_counter()
    kept, advantages, scored, dropped, flat = [], [], [], 0, 0
    for g, rs in zip(groups, group_rewards):
        if any(r is None for r in rs):
            dropped += 1
            continue
        scored += rs
        values = torch.tensor(rs, dtype=torch.float32)
        if bool((values == values[0]).all()):
            flat += 1
            continue
        kept += g
        advantages += group_advantages(values, scale=cfg.scale_advantages).tolist()
    loss, mismatch, n_tokens, lr_mult = float("nan"), float("nan"), 0, None
    if kept:
        mine = shard(list(range(len(kept))), info.rank, info.world)    # this rank's rows of the step
        data.idle = not mine
        mine = mine or [0]
        prepare(cfg, policy, [kept[i] for i in mine], [advantages[i] for i in mine], reference, data)
        micro = [loop.MicroBatch(k, 0 if data.idle else b.n_tokens, state.step + 1)
                 for k, b in enumerate(data.batches)]
        policy.model.train()
        report = loop.train_step(state, micro)
        loss, lr_mult, n_tokens = loop.take_train_loss(state), report.lr_mult, report.tokens
        mismatch = dist.all_reduce_sum([sum(data.gaps)], info)[0] / max(n_tokens, 1)
    else:   # nothing to learn from this batch: the step still counts (the schedule moves on)
        state.step += 1
        state.position = state.step
    t3 = time.perf_counter()
    generated = sum(len(r.ids) for g in groups for r in g)
    lo, hi = bootstrap_ci(scored) if scored else (float("nan"), float("nan"))
    rec = {"event": "train", "step": state.step, "reward_mean": sum(scored) / len(scored) if scored else float("nan"),
           "reward_ci": [lo, hi], "zero_variance_share": flat / max(1, len(groups) - dropped),
           "dropped_groups": dropped, "loss": loss, "trained_tokens": n_tokens, "lr_mult": lr_mult,
           "logprob_mismatch": mismatch, "sample_s": t1 - t0, "grade_s": t2 - t1, "train_s": t3 - t2,
           "tokens_per_s": generated / max(t3 - t0, 1e-9), "generated_tokens": generated}
    run.log(rec, f"step {state.step:>4} | reward {interval(scored)} | zero-var {rec['zero_variance_share']:.0%} "
                 f"| dropped {dropped} | |Δlogp| {mismatch:.2e} | {rec['tokens_per_s']:,.0f} tok/s | "
                 f"sample {t1 - t0:.1f}s grade {t2 - t1:.1f}s train {t3 - t2:.1f}s")
    return rec


def prepare(cfg, policy, kept: list[rollout.Rollout], advantages: list[float], reference, data: StepData) -> None:
    """Micro-batches of the kept rollouts, with their advantages, sampler and reference log-probs."""
    docs = [r.doc() for r in kept]
    rows = cfg.rows_per_forward
    chunks = [list(range(i, min(i + rows, len(docs)))) for i in range(0, len(docs), rows)]
    data.batches = [pack.collate([[i] for i in c], docs, policy.renderer.pad_id) for c in chunks]
    data.sampler = [aligned(b, [[lp for lp, f in zip(kept[i].sampler_logprobs, kept[i].forced) if not f] for i in c])
                    for b, c in zip(data.batches, chunks)]
    data.advantages = [torch.tensor([advantages[i] for i in c]) for c in chunks]
    data.refs, data.gaps = [None] * len(chunks), []
    if cfg.kl_beta:
        with torch.no_grad(), policy.adapters_off() if policy.lora_rank else nullcontext():
            data.refs = [policy.token_logprobs(b, cfg.temperature, model=reference) for b in data.batches]
