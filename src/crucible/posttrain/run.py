"""A post-training run on the shared training loop (crucible.train.loop): directory, log, resume, export.

    OUT/run_config.json      the run's settings (what --resume continues)
    OUT/log.jsonl            one JSON line per step/eval (the loop's Logger: append-only, flushed)
    OUT/step_000040/ ...     checkpoints (loop.save: atomic, `latest` pointer), each an evaluable
                             model plus trainable.safetensors for an exact resume
    OUT/config.json, model.safetensors, tokenizer ...   the final model: `crucible eval --model
                             native:OUT` (or hf:OUT) evaluates it directly
    OUT/summary.json         written last

The loop owns the step (schedules, token-mean normalisation across micro-batches and ranks, clip,
optimizer, checkpoints, RNG); a method brings its batches and `loss_fn`. Post-training's one
difference in setup: its AdamW never decays embeddings, the head or gains (`adamw` below), so it
replaces the loop's default optimizer before a checkpoint's state is restored into it.

Several processes (torchrun, DDP: docs/posttrain.md): every rank builds the same policy and
joins the loop's process group here; each step's `batch_size` rows are split between the ranks
(`step_shares`), and rank 0 alone writes run_config.json, log.jsonl, the final model and
summary.json and shows the bar (checkpoints: every rank calls loop.save, rank 0 writes the
weights). The data position is a global row count.

Resume: the policy is rebuilt from the saved settings (same base, same adapters), the trainable
weights of the latest checkpoint are loaded, then the loop restores optimizer, RNG and counters;
data order is a function of (seed, position), so a resumed CPU run repeats the uninterrupted
run's losses exactly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from crucible.train import checkpoint, dist, loop

TRAINABLE = "trainable.safetensors"
RUN_CONFIG = "run_config.json"


def adamw(model: torch.nn.Module, cfg) -> torch.optim.AdamW:
    """AdamW over trainable parameters; weight decay only on matrices inside the blocks."""
    from crucible.train.optim import split_params

    groups = split_params(model)
    decay = [p for _, p in groups["matrix"]]
    rest = [p for _, p in groups["embedding"] + groups["head"] + groups["scalar"]]
    param_groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    # fused: one kernel over every tensor (CPU and CUDA), what TRL/transformers default to as well
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in decay + rest)
    opt = torch.optim.AdamW([g for g in param_groups if g["params"]], lr=cfg.lr,
                            betas=(cfg.adam_beta1, cfg.adam_beta2), eps=1e-8, fused=fused or None)
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]
    return opt


class Run:
    def __init__(self, cfg, policy, loss_fn, total_steps: int, *, resume: bool = False, progress: bool = True,
                 desc: str = "train"):
        from tqdm import tqdm

        self.cfg, self.policy = cfg, policy
        self.out = Path(cfg.out)
        info = dist.init(cfg.device)
        self.master = info.master                      # rank 0 alone writes files, logs and prints
        if self.master:
            self.out.mkdir(parents=True, exist_ok=True)
            if not resume:
                tmp = self.out / (RUN_CONFIG + ".tmp")
                tmp.write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
                os.replace(tmp, self.out / RUN_CONFIG)
        dist.barrier(info)
        cfg.max_steps = total_steps                    # the loop's schedule runs over the resolved length
        ckpt = checkpoint.latest(self.out) if resume else None
        if resume and ckpt is None:
            raise FileNotFoundError(f"{self.out}: nothing to resume (no {checkpoint.LATEST} file)")
        if ckpt is not None:
            self._load_trainable(ckpt)
        self.state = loop.setup(cfg, policy.model, loss_fn, info, write_model=self.write_model)
        self.state.optimizers = [adamw(policy.model, cfg)]
        if ckpt is not None:
            loop.restore(self.state, ckpt)
        show = progress and self.master
        self.bar = tqdm(total=total_steps, initial=self.state.step, desc=desc, unit="step", disable=not show,
                        dynamic_ncols=True)
        self.log = loop.Logger(self.out / "log.jsonl", self.bar if show else None, enabled=self.master)

    def write_model(self, d, weights=None) -> None:
        """The policy and its trainable weights (`weights`: gathered from FSDP2's shards, else None)."""
        from safetensors.torch import save_file

        self.policy.save(d, weights)
        names = [n for n, p in self.policy.model.named_parameters() if p.requires_grad]
        values = weights if weights is not None else dict(self.policy.model.named_parameters())
        save_file({n: values[n].detach().contiguous() for n in names}, str(Path(d) / TRAINABLE))

    def _load_trainable(self, ckpt: Path) -> None:
        from safetensors.torch import load_file

        weights = load_file(str(ckpt / TRAINABLE), device=str(self.policy.device))
        missing = [n for n, p in self.policy.model.named_parameters() if p.requires_grad and n not in weights]
        if missing:
            raise ValueError(f"{ckpt / TRAINABLE}: lacks {missing[:3]}: not a checkpoint of this run")
        with torch.no_grad():
            for n, p in self.policy.model.named_parameters():
                if n in weights:
                    p.copy_(weights[n])

    def checkpoint_or_stop(self, stop_after: int | None) -> bool:
        """After a step: every ckpt_every steps a checkpoint; at `stop_after` a checkpoint and True
        (stop now, as if preempted: `--resume` continues)."""
        state = self.state
        if loop.finished(state):
            return False
        if stop_after is not None and state.step >= stop_after:
            loop.save(state, self.out)
            self.close()
            return True
        if self.cfg.ckpt_every and state.step % self.cfg.ckpt_every == 0:
            loop.save(state, self.out)
        return False

    def close(self) -> None:
        self.bar.close()
        self.log.close()

    def finish(self, summary: dict, *, saved: bool = False) -> dict:
        """Final checkpoint (unless `saved`), the final model in OUT, summary.json."""
        if not saved:
            loop.save(self.state, self.out)
        weights = loop.gathered_weights(self.state)     # every rank, under FSDP2
        if self.master:
            self.policy.save(self.out, weights)
            tmp = self.out / "summary.json.tmp"
            tmp.write_text(json.dumps(summary, indent=2) + "\n")
            os.replace(tmp, self.out / "summary.json")
        self.log({"event": "end", **summary})
        dist.barrier(self.state.info)                  # OUT is complete when any rank returns
        self.close()
        return summary


def mean_ci(values) -> tuple[float, float, float] | None:
    """(mean, lo, hi) of per-item values, the interval a 95 % bootstrap over items; None when empty."""
    from crucible.metrics import bootstrap_ci

    values = [float(v) for v in values]
    if not values:
        return None
    return (sum(values) / len(values), *bootstrap_ci(values))


def describe(ci: tuple[float, float, float] | None, n: int) -> str:
    """'mean [lo, hi] (95% CI, n=N)' of `mean_ci`'s result."""
    if ci is None:
        return "n/a"
    mean, lo, hi = ci
    return f"{mean:.4f} [{lo:.4f}, {hi:.4f}] (95% CI, n={n})"


def interval(values) -> str:
    """'mean [lo, hi] (95% CI, n=N)' of per-item values (bootstrap over items)."""
    values = list(values)
    return describe(mean_ci(values), len(values))


def shard(items: list, rank: int, world: int) -> list:
    """Rank `rank`'s contiguous share of `items`, one of `world` near-equal shares in order (equal
    when world divides len(items); empty for some ranks when there are fewer items than ranks)."""
    n = len(items)
    return items[rank * n // world:(rank + 1) * n // world]


def step_shares(n: int, cfg, start: int, rank: int = 0, world: int = 1):
    """Per optimizer step, (this rank's micro-batches of item indices, the position after the step).
    Every rank draws the same `batch_size` items from item_stream(n, seed, start), keeps its share
    and cuts it into micro-batches of `rows_per_forward`; the ranks' shares are disjoint and together
    exactly the step of a 1-rank run. The position counts items drawn on all ranks, so a checkpoint
    says the same thing at any world size."""
    stream, position = item_stream(n, cfg.seed, start), start
    while True:
        mine = shard([next(stream) for _ in range(cfg.batch_size)], rank, world)
        position += cfg.batch_size
        yield [mine[k:k + cfg.rows_per_forward] for k in range(0, len(mine), cfg.rows_per_forward)], position


def item_stream(n: int, seed: int, start: int = 0):
    """Item indices 0..n-1, epoch after epoch, each epoch a seeded shuffle: the k-th item drawn is
    a pure function of (n, seed, k), so a run restarts anywhere from its position alone."""
    import random

    k, epoch, order = start, None, None
    while True:
        e, i = divmod(k, n)
        if e != epoch:
            epoch, order = e, list(range(n))
            random.Random(seed * 1_000_003 + e).shuffle(order)
        yield order[i]
        k += 1
