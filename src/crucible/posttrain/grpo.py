"""RL from execution rewards (GRPO with DAPO's choices): `crucible grpo`.

Per step:
    sample   `tasks_per_step` tasks (a seeded cycle through the suite), `group_size` rollouts each
             from the live policy (rollout.py)
    grade    every completion in the sandbox (rewards.py): pass 1, fail 0, infrastructure failure
             -> the whole group is dropped and counted, never scored as the model's fault
    train    advantages r − group mean (optionally / std); groups whose rewards are all equal carry
             no signal and are left out (DAPO's dynamic-sampling filter; their share is reported);
             the clipped-ratio loss summed over trained tokens and divided by the step's token
             count (DAPO's token-level normalisation) across micro-batches; optional KL to the
             reference (kl_beta > 0 only: then the starting weights, or the adapters switched off)
    report   mean reward with its interval, share of zero-variance groups, dropped groups, tokens/s,
             seconds spent sampling / grading / training, and the mean |sampler − trainer| log-prob
             of the same tokens.

One policy update per batch of rollouts, so the "old" log-probs of the ratio are the trainer's own
at the time of the update (ratio 1, the clip inactive on the first pass); `dtype` sets the
trainer's compute (float32 or bf16 autocast), which the mismatch figure makes visible.

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
from crucible.posttrain.run import Run, interval
from crucible.posttrain.step import accumulate, adamw, optimizer_step


def tasks_for_step(tasks: list[dict], per_step: int, seed: int, step: int) -> list[dict]:
    """A seeded cycle through the tasks: each epoch a new shuffle; a pure function of the step."""
    chosen = []
    for k in range(step * per_step, (step + 1) * per_step):
        epoch, i = divmod(k, len(tasks))
        order = list(range(len(tasks)))
        random.Random(seed * 7919 + epoch).shuffle(order)
        chosen.append(tasks[order[i]])
    return chosen


def score_groups(groups: list[list[rollout.Rollout]], suite, reward_fns, workers: int = 4):
    """(rewards per group, verdicts per group): None rewards where the grader's infrastructure failed."""
    flat = [r for g in groups for r in g]
    verdicts = reward_lib.grade(suite, [r.task for r in flat], [r.text for r in flat], workers)
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


def train(cfg, policy, suite, reward_fns=(), *, resume: bool = False, stop_after: int | None = None,
          progress: bool = True, workers: int = 4) -> dict:
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    tasks = list(suite.tasks)
    total = cfg.max_steps or max(1, round(cfg.epochs * len(tasks) / cfg.tasks_per_step))
    reference = None
    if cfg.kl_beta and not policy.lora_rank:
        reference = copy.deepcopy(policy.model).eval().requires_grad_(False)
    optimizer = adamw(policy.model, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(cfg.adam_beta1, cfg.adam_beta2))
    bar = tqdm(total=total, desc="grpo", unit="step", disable=not progress, dynamic_ncols=True)
    run = Run(cfg, policy, optimizer, progress_bar=bar if progress else None)
    state = (run.restore() if resume else None) or {"step": 0}
    bar.update(state["step"])
    run.log({"event": "start", "suite": suite.name, "tasks": len(tasks), "steps": total,
             "group_size": cfg.group_size, "tasks_per_step": cfg.tasks_per_step},
            f"grpo on {suite.name}: {len(tasks)} tasks, {cfg.tasks_per_step} x {cfg.group_size} samples per step, "
            f"{total} steps")
    history = []
    while state["step"] < total:
        step = state["step"]
        rec = grpo_step(cfg, policy, optimizer, run, suite, reward_fns, tasks_for_step(tasks, cfg.tasks_per_step,
                        cfg.seed, step), step, total, reference, workers)
        state["step"] += 1
        history.append(rec)
        bar.update(1)
        if run.checkpoint_or_stop(state, total, stop_after):
            bar.close()
            return {"stopped_at": state["step"], "history": history}
    bar.close()
    summary = {"method": "grpo", "suite": suite.name, "steps": state["step"],
               "first_reward": history[0]["reward_mean"] if history else None,
               "last_reward": history[-1]["reward_mean"] if history else None,
               "first_reward_ci": history[0]["reward_ci"] if history else None,
               "last_reward_ci": history[-1]["reward_ci"] if history else None,
               "dropped_groups": sum(h["dropped_groups"] for h in history)}
    run.save(state["step"], state)
    return run.finish(summary)


def grpo_step(cfg, policy, optimizer, run, suite, reward_fns, tasks, step, total, reference, workers) -> dict:
    from crucible.metrics import bootstrap_ci

    t0 = time.perf_counter()
    groups = rollout.sample(policy, tasks, cfg.group_size, temperature=cfg.temperature,
                            max_new_tokens=cfg.max_new_tokens, seed=cfg.seed * 100_003 + step, tools=cfg.tools)
    t1 = time.perf_counter()
    group_rewards, _ = score_groups(groups, suite, reward_fns, workers)
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
    lr_mult = run.set_lr(step, total)
    loss, mismatch, n_tokens = float("nan"), float("nan"), 0
    if kept:
        loss, mismatch, n_tokens = _update(cfg, policy, optimizer, kept, advantages, reference)
    t3 = time.perf_counter()
    generated = sum(len(r.ids) for g in groups for r in g)
    lo, hi = bootstrap_ci(scored) if scored else (float("nan"), float("nan"))
    rec = {"event": "train", "step": step + 1, "reward_mean": sum(scored) / len(scored) if scored else float("nan"),
           "reward_ci": [lo, hi], "zero_variance_share": flat / max(1, len(groups) - dropped),
           "dropped_groups": dropped, "loss": loss, "trained_tokens": n_tokens, "lr_mult": lr_mult,
           "logprob_mismatch": mismatch, "sample_s": t1 - t0, "grade_s": t2 - t1, "train_s": t3 - t2,
           "tokens_per_s": generated / max(t3 - t0, 1e-9), "generated_tokens": generated}
    run.log(rec, f"step {step + 1:>4} | reward {interval(scored)} | zero-var {rec['zero_variance_share']:.0%} "
                 f"| dropped {dropped} | |Δlogp| {mismatch:.2e} | {rec['tokens_per_s']:,.0f} tok/s | "
                 f"sample {t1 - t0:.1f}s grade {t2 - t1:.1f}s train {t3 - t2:.1f}s")
    return rec


def _update(cfg, policy, optimizer, kept: list[rollout.Rollout], advantages: list[float], reference):
    docs = [r.doc() for r in kept]
    micro = cfg.micro_batch or cfg.batch_size
    chunks = [list(range(i, min(i + micro, len(docs)))) for i in range(0, len(docs), micro)]
    batches = [pack.collate([[i] for i in c], docs, policy.renderer.pad_id) for c in chunks]
    sampler = [aligned(b, [[lp for lp, f in zip(kept[i].sampler_logprobs, kept[i].forced) if not f] for i in c])
               for b, c in zip(batches, chunks)]
    refs = [None] * len(batches)
    if cfg.kl_beta:
        with torch.no_grad():
            with policy.adapters_off() if policy.lora_rank else nullcontext():
                refs = [policy.token_logprobs(b, cfg.temperature, model=reference) for b in batches]
    adv = [torch.tensor([advantages[i] for i in c]) for c in chunks]
    gaps = []
    policy.model.train()

    def loss_sum(k):
        b = batches[k]
        lp = policy.token_logprobs(b, cfg.temperature)
        trained = (b.targets != pack.IGNORE).to(lp.device).float()
        gaps.append(((lp.detach().cpu() - sampler[k]).abs() * trained.cpu()).sum().item())
        return grpo_loss_sum(lp, lp.detach(), adv[k].to(lp.device), trained, clip_low=cfg.clip_low,
                             clip_high=cfg.clip_high, ref_logprobs=refs[k], kl_beta=cfg.kl_beta)

    loss, n_tokens = accumulate(range(len(batches)), loss_sum, lambda k: batches[k].n_tokens)
    optimizer_step(optimizer, policy.trainable(), cfg.grad_clip)
    return loss, sum(gaps) / max(n_tokens, 1), int(n_tokens)
