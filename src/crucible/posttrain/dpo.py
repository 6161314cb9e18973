"""Preference optimisation (DPO, IPO): `crucible dpo`.

    pairs (validated) -> chosen and rejected rendered with the prompt masked
    -> reference log-probs of every answer computed once, before the first update, and cached in
       OUT/reference_logprobs.json (keyed by a hash of the rendered pairs; a resumed run reads them)
    -> per step (crucible.train.loop.train_step): `batch_size` pairs in micro-batches, each trained
       on its mean loss over pairs and weighed by its pair count, so the step's loss is the mean
       over its pairs; clip, AdamW; reward margin and accuracy reported with intervals.

Because the reference is computed up front, no second model is ever held: it is the starting
weights (under LoRA, the same as the adapters switched off, which is how it is computed there).

Several processes (torchrun, DDP): each step's pairs are split between the ranks (run.step_shares)
and the logged margin and accuracy gather every rank's pairs, so 2 ranks log the losses of 1 rank
(tests/test_posttrain_dist.py). Rank 0 computes the reference cache while the others wait, then
they read it. The final margins are computed on every rank (the same numbers; rank 0 logs them).

Not covered: reference-free variants (SimPO, ORPO), a reference model other than the start.
"""

from __future__ import annotations

import hashlib
import json
import math
from contextlib import nullcontext
from pathlib import Path

import torch

from crucible.posttrain import pack
from crucible.posttrain.data import DataError
from crucible.posttrain.losses import dpo_losses, sequence_logprobs
from crucible.posttrain.render import pair_examples
from crucible.posttrain.run import Run, interval, step_shares
from crucible.train import dist, loop

REFERENCE = "reference_logprobs.json"


def render_pairs(policy, pairs) -> list[tuple[list[int], list[int]]]:
    """[chosen_0, rejected_0, chosen_1, rejected_1, ...] as (ids, mask)."""
    docs = []
    for pair in pairs:
        chosen, rejected = pair_examples(pair)
        docs += [policy.renderer.example(chosen), policy.renderer.example(rejected)]
    return docs


def docs_hash(docs) -> str:
    return hashlib.sha256(json.dumps(docs).encode()).hexdigest()[:16]


def pair_logprobs(policy, docs, pair_ids: list[int], *, mean: bool, model=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) sequence log-probs [N] of the given pairs (with gradients if enabled)."""
    rows = [[2 * i] for i in pair_ids] + [[2 * i + 1] for i in pair_ids]
    batch = pack.collate(rows, docs, policy.renderer.pad_id)
    lp = policy.token_logprobs(batch, model=model)
    seq = sequence_logprobs(lp, (batch.targets != pack.IGNORE).to(lp.device).float(), mean=mean)
    return seq[:len(pair_ids)], seq[len(pair_ids):]


@torch.no_grad()
def reference_logprobs(policy, docs, *, mean: bool, batch_pairs: int = 8) -> list[list[float]]:
    """[[chosen, rejected], ...] under the reference (the starting weights / adapters off)."""
    out = []
    with policy.adapters_off() if policy.lora_rank else nullcontext():
        for start in range(0, len(docs) // 2, batch_pairs):
            ids = list(range(start, min(start + batch_pairs, len(docs) // 2)))
            c, r = pair_logprobs(policy, docs, ids, mean=mean)
            out += [[a, b] for a, b in zip(c.tolist(), r.tolist())]
    return out


def cached_reference(policy, docs, out: Path, *, mean: bool, info: dist.DistInfo) -> list[list[float]]:
    """The cached reference log-probs for these rendered pairs, computing and saving them if absent.
    Under several ranks rank 0 alone reads or computes and writes the file while the others wait,
    then they read what it wrote: one computation, no two writers."""
    key = docs_hash(docs) + ("-mean" if mean else "-sum")
    path = out / REFERENCE

    def saved() -> list | None:
        if not path.is_file():
            return None
        content = json.loads(path.read_text())
        return content["logprobs"] if content.get("key") == key else None

    values = None
    if info.master:
        values = saved()
        if values is None:
            values = reference_logprobs(policy, docs, mean=mean)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps({"key": key, "logprobs": values}) + "\n")
            tmp.replace(path)
    dist.barrier(info)
    return values if info.master else saved()


def margins(policy, docs, ref, cfg) -> list[float]:
    """β-scaled reward margins of every pair under the current policy (no gradients)."""
    out = []
    with torch.no_grad():
        for start in range(0, len(docs) // 2, 8):
            ids = list(range(start, min(start + 8, len(docs) // 2)))
            c, r = pair_logprobs(policy, docs, ids, mean=cfg.loss == "ipo")
            ref_c, ref_r = (torch.tensor([ref[i][k] for i in ids]) for k in (0, 1))
            out += dpo_losses(c.cpu(), r.cpu(), ref_c, ref_r, beta=cfg.beta, kind=cfg.loss)[1].tolist()
    return out


def train(cfg, policy, train_pairs, val_pairs, *, resume: bool = False, stop_after: int | None = None,
          progress: bool = True) -> dict:
    torch.manual_seed(cfg.seed)
    mean = cfg.loss == "ipo"
    docs, val_docs = render_pairs(policy, train_pairs), render_pairs(policy, val_pairs)
    too_long = [p.where for p, i in zip(train_pairs, range(0, len(docs), 2))
                if max(len(docs[i][0]), len(docs[i + 1][0])) - 1 > cfg.seq_len]
    if too_long:
        raise DataError(f"{len(too_long)} pair(s) longer than seq_len {cfg.seq_len}, e.g. {too_long[0]}")
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * len(train_pairs) / cfg.batch_size))
    step_margins: list[float] = []
    ref: list = []

    def loss_fn(model, chunk):   # mean over this micro-batch's pairs
        c, r = pair_logprobs(policy, docs, chunk, mean=mean, model=model)
        ref_c = torch.tensor([ref[i][0] for i in chunk], device=c.device)
        ref_r = torch.tensor([ref[i][1] for i in chunk], device=c.device)
        losses, m = dpo_losses(c, r, ref_c, ref_r, beta=cfg.beta, kind=cfg.loss)
        step_margins.extend(m.tolist())
        if cfg.nll_alpha:
            batch = pack.collate([[2 * i] for i in chunk], docs, policy.renderer.pad_id)
            trained = (batch.targets != pack.IGNORE).float().to(c.device)
            lp = policy.token_logprobs(batch, model=model)
            losses = losses + cfg.nll_alpha * (-(lp * trained).sum(-1) / trained.sum(-1))
        return losses.mean()

    run = Run(cfg, policy, loss_fn, total, resume=resume, progress=progress, desc="dpo")
    ref += cached_reference(policy, docs, run.out, mean=mean, info=run.state.info)   # before any update
    val_ref = reference_logprobs(policy, val_docs, mean=mean) if val_docs else []
    run.log({"event": "start", "pairs": len(train_pairs), "steps": total, "loss": cfg.loss, "beta": cfg.beta},
            f"dpo ({cfg.loss}, beta {cfg.beta}): {len(train_pairs)} pairs, {total} steps")
    state, info = run.state, run.state.info
    steps = step_shares(len(train_pairs), cfg, state.position, info.rank, info.world)
    policy.model.train()
    while not loop.finished(state):
        chunks, position = next(steps)
        micro = [loop.MicroBatch(c, len(c), position) for c in chunks]
        step_margins.clear()
        report = loop.train_step(state, micro)
        loss = loop.take_train_loss(state)
        run.bar.update(1)
        local_tokens = sum(len(docs[2 * i][0]) + len(docs[2 * i + 1][0]) for c in chunks for i in c)
        tokens = dist.all_reduce_sum([local_tokens], info)[0]
        step_all = dist.all_gather_lists(step_margins, info)      # every rank's pairs, in step order
        accuracy = [float(m > 0) for m in step_all]
        rec = {"event": "train", "step": state.step, "loss": loss, "margin": sum(step_all) / len(step_all),
               "accuracy": sum(accuracy) / len(accuracy), "lr_mult": report.lr_mult,
               "tokens_per_s": tokens / report.seconds}
        line = None
        if state.step % cfg.log_every == 0 or loop.finished(state):
            line = (f"step {state.step:>5} | loss {loss:.4f} | margin {interval(step_all)} | "
                    f"accuracy {interval(accuracy)} | {rec['tokens_per_s']:,.0f} tok/s")
        run.log(rec, line)
        if run.checkpoint_or_stop(stop_after):
            return {"stopped_at": state.step}
    summary = {"method": "dpo", "steps": state.step, "pairs": len(train_pairs)}
    for name, d, r in (("train", docs, ref), ("val", val_docs, val_ref)):
        if d:
            m = margins(policy, d, r, cfg)
            summary[f"{name}_margin"] = sum(m) / len(m)
            summary[f"{name}_margin_interval"] = interval(m)
            summary[f"{name}_accuracy_interval"] = interval([float(x > 0) for x in m])
            run.log({"event": "eval", "split": name, "margin": summary[f"{name}_margin"]},
                    f"{name}: reward margin {interval(m)}, accuracy {interval([float(x > 0) for x in m])}")
    return run.finish(summary)
