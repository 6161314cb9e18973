"""Supervised fine-tuning: `crucible sft`.

    examples (validated) -> render (ids + loss mask) -> rows (packed or padded, over-long dropped)
    -> per step: `batch_size` rows in micro-batches of `micro_batch`, summed CE on trained tokens
       divided by the step's trained-token count (step.accumulate), clip, AdamW, lr schedule
    -> validation loss every eval_every and at the end; checkpoints; the final model in OUT.

Data order is a seeded shuffle of the rows per epoch, a pure function of (seed, epoch), so the
step number alone says where a resumed run continues.

Long context: `seq_len` may exceed the base model's; for native models `rope_theta` sets a larger
RoPE base (the standard base-frequency scaling used to extend context) before training at it.

Not covered: multi-process (DDP) post-training, sequence parallelism.
"""

from __future__ import annotations

import math
import time

import torch

from crucible.posttrain import pack
from crucible.posttrain.data import DataError
from crucible.posttrain.run import Run, interval
from crucible.posttrain.step import accumulate, adamw, optimizer_step


def render_all(policy, examples) -> list[tuple[list[int], list[int]]]:
    return [policy.renderer.example(ex) for ex in examples]


def set_rope_theta(policy, theta: float) -> None:
    if policy.kind != "native":
        raise ValueError("rope_theta applies to native models (HF models: edit rope_theta in config.json)")
    policy.model.config.rope_base = float(theta)
    policy.model._rope_len = 0          # rebuild the cos/sin tables at the new base


@torch.no_grad()
def validation_loss(policy, docs, seq_len: int, batch_rows: int = 8) -> dict:
    """Token-mean loss of each validation document, and their mean with an interval."""
    p = pack.plan([len(ids) - 1 for ids, _ in docs], seq_len, packed=False)
    per_doc = []
    for i in range(0, len(p.rows), batch_rows):
        batch = pack.collate(p.rows[i:i + batch_rows], docs, policy.renderer.pad_id)
        lp = policy.token_logprobs(batch)
        trained = (batch.targets != pack.IGNORE)
        per_doc += (-(lp * trained).sum(-1) / trained.sum(-1).clamp_min(1)).tolist()
    return {"loss": sum(per_doc) / len(per_doc) if per_doc else float("nan"), "per_doc": per_doc}


def steps_per_epoch(plan_: pack.Plan, batch_size: int) -> int:
    return max(1, math.ceil(len(plan_.rows) / batch_size))


def train(cfg, policy, train_examples, val_examples, *, resume: bool = False, stop_after: int | None = None,
          progress: bool = True) -> dict:
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    if cfg.rope_theta:
        set_rope_theta(policy, cfg.rope_theta)
    docs, val_docs = render_all(policy, train_examples), render_all(policy, val_examples)
    plan_ = pack.plan([len(ids) - 1 for ids, _ in docs], cfg.seq_len, packed=cfg.pack)
    if not plan_.rows:
        raise DataError(f"no example fits seq_len {cfg.seq_len} (all {len(plan_.dropped)} are longer)")
    per_epoch = steps_per_epoch(plan_, cfg.batch_size)
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * per_epoch))
    optimizer = adamw(policy.model, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(cfg.adam_beta1, cfg.adam_beta2))
    bar = tqdm(total=total, desc="sft", unit="step", disable=not progress, dynamic_ncols=True)
    run = Run(cfg, policy, optimizer, progress_bar=bar if progress else None)
    state = (run.restore() if resume else None) or {"step": 0, "tokens": 0}
    bar.update(state["step"])
    trained_tokens = sum(sum(m[1:]) for _, m in docs)
    real = sum(len(docs[i][0]) - 1 for row in plan_.rows for i in row)
    padding = 1 - real / (len(plan_.rows) * cfg.seq_len) if cfg.pack else None
    run.log({"event": "start", "examples": len(docs), "rows": len(plan_.rows), "dropped_over_long": len(plan_.dropped),
             "trained_tokens": trained_tokens, "steps": total, "packed": cfg.pack, "padding_share": padding},
            f"sft: {len(docs)} examples -> {len(plan_.rows)} rows of {cfg.seq_len} "
            f"({'packed' if cfg.pack else 'padded'}), "
            f"{len(plan_.dropped)} over-long dropped, {total} steps")
    if plan_.dropped:
        run.log({"event": "dropped", "where": [train_examples[i].where for i in plan_.dropped[:20]]},
                f"dropped {len(plan_.dropped)} example(s) longer than seq_len {cfg.seq_len} "
                f"(not cropped), e.g. {train_examples[plan_.dropped[0]].where}")
    micro = cfg.micro_batch or cfg.batch_size
    width = cfg.seq_len if cfg.pack else None
    epoch_cache: dict[int, list] = {}
    losses = []
    while state["step"] < total:
        step = state["step"]
        epoch, index = divmod(step, per_epoch)
        if epoch not in epoch_cache:
            epoch_cache = {epoch: pack.epoch_batches(plan_.rows, cfg.batch_size, cfg.seed, epoch)}
        rows = epoch_cache[epoch][index]
        t0 = time.perf_counter()
        lr_mult = run.set_lr(step, total)
        batches = [pack.collate(rows[i:i + micro], docs, policy.renderer.pad_id, width)
                   for i in range(0, len(rows), micro)]
        policy.model.train()
        loss, n_tokens = accumulate(batches, policy.sft_loss_sum, lambda b: b.n_tokens)
        grad_norm = optimizer_step(optimizer, policy.trainable(), cfg.grad_clip)
        dt = time.perf_counter() - t0
        state["step"] += 1
        state["tokens"] += int(sum(b.input_ids.numel() for b in batches))
        losses.append(loss)
        bar.update(1)
        rec = {"event": "train", "step": state["step"], "loss": loss, "trained_tokens": n_tokens,
               "grad_norm": grad_norm, "lr_mult": lr_mult,
               "tokens_per_s": sum(b.input_ids.numel() for b in batches) / dt}
        if state["step"] % cfg.log_every == 0 or state["step"] == total:
            run.log(rec, f"step {state['step']:>5} | loss {loss:.4f} | grad {grad_norm:.3f} | "
                         f"{rec['tokens_per_s']:,.0f} tok/s")
        else:
            run.log(rec)
        if cfg.eval_every and state["step"] % cfg.eval_every == 0 and val_docs and state["step"] < total:
            v = validation_loss(policy, val_docs, cfg.seq_len)
            run.log({"event": "eval", "step": state["step"], "val_loss": v["loss"]},
                    f"step {state['step']:>5} | val loss {interval(v['per_doc'])}")
        if run.checkpoint_or_stop(state, total, stop_after):
            bar.close()
            return {"stopped_at": state["step"], "losses": losses}
    bar.close()
    summary = {"method": "sft", "steps": state["step"], "tokens": state["tokens"], "examples": len(docs),
               "dropped_over_long": len(plan_.dropped), "final_train_loss": losses[-1] if losses else None,
               "losses": losses}
    if val_docs:
        v = validation_loss(policy, val_docs, cfg.seq_len)
        summary.update(val_loss=v["loss"], val_loss_interval=interval(v["per_doc"]))
        run.log({"event": "eval", "step": state["step"], "val_loss": v["loss"]},
                f"final val loss {interval(v['per_doc'])}")
    run.save(state["step"], state)
    return run.finish(summary)
