"""Preference optimisation (DPO, IPO): `crucible dpo`.

    pairs (validated) -> chosen and rejected rendered with the prompt masked
    -> reference log-probs of every answer computed once, before the first update, and cached in
       OUT/reference_logprobs.json (keyed by a hash of the rendered pairs; a resumed run reads them)
    -> per step: `batch_size` pairs, the loss summed over pairs and divided by the step's pair
       count (step.accumulate), clip, AdamW; reward margin and accuracy reported with intervals.

Because the reference is computed up front, no second model is ever held: it is the starting
weights (under LoRA, the same as the adapters switched off, which is how it is computed there).

Not covered: reference-free variants (SimPO, ORPO), a reference model other than the start.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from crucible.posttrain import pack
from crucible.posttrain.data import DataError
from crucible.posttrain.losses import dpo_losses, sequence_logprobs
from crucible.posttrain.render import pair_examples
from crucible.posttrain.run import Run, interval
from crucible.posttrain.step import accumulate, adamw, optimizer_step

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


def cached_reference(policy, docs, out: Path, *, mean: bool) -> list[list[float]]:
    """The cached reference log-probs for these rendered pairs, computing and saving them if absent."""
    key = docs_hash(docs) + ("-mean" if mean else "-sum")
    path = out / REFERENCE
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            return saved["logprobs"]
    values = reference_logprobs(policy, docs, mean=mean)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"key": key, "logprobs": values}) + "\n")
    tmp.replace(path)
    return values


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
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    mean = cfg.loss == "ipo"
    docs, val_docs = render_pairs(policy, train_pairs), render_pairs(policy, val_pairs)
    too_long = [p.where for p, i in zip(train_pairs, range(0, len(docs), 2))
                if max(len(docs[i][0]), len(docs[i + 1][0])) - 1 > cfg.seq_len]
    if too_long:
        raise DataError(f"{len(too_long)} pair(s) longer than seq_len {cfg.seq_len}, e.g. {too_long[0]}")
    per_epoch = max(1, math.ceil(len(train_pairs) / cfg.batch_size))
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * per_epoch))
    optimizer = adamw(policy.model, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(cfg.adam_beta1, cfg.adam_beta2))
    bar = tqdm(total=total, desc="dpo", unit="step", disable=not progress, dynamic_ncols=True)
    run = Run(cfg, policy, optimizer, progress_bar=bar if progress else None)
    ref = cached_reference(policy, docs, run.out, mean=mean)            # before any update
    val_ref = reference_logprobs(policy, val_docs, mean=mean) if val_docs else []
    state = (run.restore() if resume else None) or {"step": 0}
    bar.update(state["step"])
    run.log({"event": "start", "pairs": len(train_pairs), "steps": total, "loss": cfg.loss, "beta": cfg.beta},
            f"dpo ({cfg.loss}, beta {cfg.beta}): {len(train_pairs)} pairs, {total} steps")
    micro = cfg.micro_batch or cfg.batch_size
    history = []
    while state["step"] < total:
        step = state["step"]
        epoch, index = divmod(step, per_epoch)
        ids = pack.epoch_batches(list(range(len(train_pairs))), cfg.batch_size, cfg.seed, epoch)[index]
        t0 = time.perf_counter()
        lr_mult = run.set_lr(step, total)
        step_margins = []

        def loss_sum(chunk):
            c, r = pair_logprobs(policy, docs, chunk, mean=mean)
            ref_c = torch.tensor([ref[i][0] for i in chunk], device=c.device)
            ref_r = torch.tensor([ref[i][1] for i in chunk], device=c.device)
            losses, m = dpo_losses(c, r, ref_c, ref_r, beta=cfg.beta, kind=cfg.loss)
            step_margins.extend(m.tolist())
            total_loss = losses.sum()
            if cfg.nll_alpha:
                chosen = [2 * i for i in chunk]
                batch = pack.collate([[i] for i in chosen], docs, policy.renderer.pad_id)
                trained = (batch.targets != pack.IGNORE).float().to(c.device)
                lp = policy.token_logprobs(batch)
                total_loss = total_loss + cfg.nll_alpha * (-(lp * trained).sum(-1) / trained.sum(-1)).sum()
            return total_loss

        policy.model.train()
        chunks = [ids[i:i + micro] for i in range(0, len(ids), micro)]
        loss, _ = accumulate(chunks, loss_sum, len)
        grad_norm = optimizer_step(optimizer, policy.trainable(), cfg.grad_clip)
        dt = time.perf_counter() - t0
        tokens = sum(len(docs[2 * i][0]) + len(docs[2 * i + 1][0]) for i in ids)
        state["step"] += 1
        bar.update(1)
        accuracy = [float(m > 0) for m in step_margins]
        rec = {"event": "train", "step": state["step"], "loss": loss, "margin": sum(step_margins) / len(step_margins),
               "accuracy": sum(accuracy) / len(accuracy), "grad_norm": grad_norm, "lr_mult": lr_mult,
               "tokens_per_s": tokens / dt}
        history.append(rec)
        line = None
        if state["step"] % cfg.log_every == 0 or state["step"] == total:
            line = (f"step {state['step']:>5} | loss {loss:.4f} | margin {interval(step_margins)} | "
                    f"accuracy {interval(accuracy)} | {rec['tokens_per_s']:,.0f} tok/s")
        run.log(rec, line)
        if run.checkpoint_or_stop(state, total, stop_after):
            bar.close()
            return {"stopped_at": state["step"], "history": history}
    bar.close()
    summary = {"method": "dpo", "steps": state["step"], "pairs": len(train_pairs),
               "history_loss": [h["loss"] for h in history]}
    for name, d, r in (("train", docs, ref), ("val", val_docs, val_ref)):
        if d:
            m = margins(policy, d, r, cfg)
            summary[f"{name}_margin"] = sum(m) / len(m)
            summary[f"{name}_margin_interval"] = interval(m)
            summary[f"{name}_accuracy_interval"] = interval([float(x > 0) for x in m])
            run.log({"event": "eval", "split": name, "margin": summary[f"{name}_margin"]},
                    f"{name}: reward margin {interval(m)}, accuracy {interval([float(x > 0) for x in m])}")
    run.save(state["step"], state)
    return run.finish(summary)
