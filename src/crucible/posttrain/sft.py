"""Supervised fine-tuning: `crucible sft`, through the shared training loop (crucible.train.loop.fit).

    examples (validated) -> render (ids + loss mask) -> rows (packed or padded, over-long dropped)
    -> a stream of micro-batches of `micro_batch` rows (`batch_size` rows per step), each trained
       on its mean cross-entropy over trained tokens; the loop weighs them by their token counts so
       the step's loss is the mean over every trained token in it; clip, AdamW, lr schedule
    -> validation loss every eval_every and at the end; checkpoints; the final model in OUT.

Data order is a seeded shuffle of the rows per epoch, a pure function of (seed, rows consumed),
so the loop's saved position alone says where a resumed run continues.

Several processes (torchrun, DDP): each step's `batch_size` rows are split between the ranks, so
2 ranks train exactly the rows, losses and weights of 1 rank with the same batch (to float
rounding; tests/test_posttrain_dist.py). Validation runs on every rank (the same numbers; rank 0
logs them).

Long context: `seq_len` may exceed the base model's; for native models `rope_theta` sets a larger
RoPE base (the standard base-frequency scaling used to extend context) before training at it.

Not covered: sequence parallelism; FSDP2 (docs/posttrain.md); validation split between ranks.
"""

from __future__ import annotations

import math

import torch

from crucible.posttrain import pack
from crucible.posttrain.data import DataError
from crucible.posttrain.run import Run, describe, mean_ci, step_shares
from crucible.train import loop


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


def validation_record(per_doc: list[float]) -> dict:
    """The log's validation fields: the mean loss, its interval as numbers (for reports and gates)
    and as text (for people)."""
    ci = mean_ci(per_doc)
    return {"val_loss": ci[0] if ci else float("nan"), "val_loss_ci": list(ci[1:]) if ci else None,
            "val_loss_interval": describe(ci, len(per_doc))}


def micro_batches(rows: list[list[int]], docs, cfg, pad_id: int, start: int, rank: int = 0, world: int = 1):
    """This rank's MicroBatches of `rows_per_forward` rows from row position `start`, forever (epoch
    after epoch): its share of each step's `batch_size` rows (run.step_shares)."""
    width = cfg.seq_len if cfg.pack else None
    for chunks, position in step_shares(len(rows), cfg, start, rank, world):
        for chunk in chunks:
            batch = pack.collate([rows[i] for i in chunk], docs, pad_id, width)
            yield loop.MicroBatch(batch, batch.n_tokens, position)


def train(cfg, policy, train_examples, val_examples, *, resume: bool = False, stop_after: int | None = None,
          progress: bool = True) -> dict:
    torch.manual_seed(cfg.seed)
    if cfg.rope_theta:
        set_rope_theta(policy, cfg.rope_theta)
    docs, val_docs = render_all(policy, train_examples), render_all(policy, val_examples)
    plan_ = pack.plan([len(ids) - 1 for ids, _ in docs], cfg.seq_len, packed=cfg.pack)
    if not plan_.rows:
        raise DataError(f"no example fits seq_len {cfg.seq_len} (all {len(plan_.dropped)} are longer)")
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * len(plan_.rows) / cfg.batch_size))

    def loss_fn(model, batch):   # mean over this micro-batch's trained tokens
        return policy.sft_loss_sum(batch, model) / max(batch.n_tokens, 1)

    run = Run(cfg, policy, loss_fn, total, resume=resume, progress=progress, desc="sft")
    real = sum(len(docs[i][0]) - 1 for row in plan_.rows for i in row)
    padding = 1 - real / (len(plan_.rows) * cfg.seq_len) if cfg.pack else None
    run.log({"event": "start", "examples": len(docs), "rows": len(plan_.rows), "dropped_over_long": len(plan_.dropped),
             "trained_tokens": sum(sum(m[1:]) for _, m in docs), "steps": total, "packed": cfg.pack,
             "padding_share": padding},
            f"sft: {len(docs)} examples -> {len(plan_.rows)} rows of {cfg.seq_len} "
            f"({'packed' if cfg.pack else 'padded'}), {len(plan_.dropped)} over-long dropped, {total} steps")
    if plan_.dropped:
        run.log({"event": "dropped", "where": [train_examples[i].where for i in plan_.dropped[:20]]},
                f"dropped {len(plan_.dropped)} example(s) longer than seq_len {cfg.seq_len} "
                f"(not cropped), e.g. {train_examples[plan_.dropped[0]].where}")

    def score(model) -> dict:
        if not val_docs:
            return {"val_loss": float("nan")}
        return validation_record(validation_loss(policy, val_docs, cfg.seq_len)["per_doc"])

    evaluation = loop.Evaluation(score, "val_loss", lambda r: f"val loss {r.get('val_loss_interval', 'n/a')}")
    policy.model.train()
    info = run.state.info
    batches = micro_batches(plan_.rows, docs, cfg, policy.renderer.pad_id, run.state.position, info.rank, info.world)
    result = loop.fit(run.state, batches, evaluation, log=run.log, bar=run.bar, stop_after=stop_after)
    if result.stopped_at is not None:
        run.log.close()
        return {"stopped_at": result.stopped_at}
    summary = {"method": "sft", "steps": run.state.step, "tokens": run.state.tokens, "examples": len(docs),
               "dropped_over_long": len(plan_.dropped), **{k: v for k, v in result.final.items() if k.startswith("val")}}
    return run.finish(summary, saved=True)
