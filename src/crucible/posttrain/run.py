"""What every post-training run shares: its directory, log, schedule, checkpoints and final export.

    OUT/log.jsonl            one JSON line per step/eval (append-only, flushed)
    OUT/step_000040/ ...     checkpoints (crucible.train.checkpoint: atomic, `latest` pointer),
                             each an evaluable model plus trainable.safetensors for an exact resume
    OUT/config.json, model.safetensors, tokenizer ...   the final model: `crucible eval --model
                             native:OUT` (or hf:OUT) evaluates it directly
    OUT/summary.json         written last

Resume: the policy is rebuilt from the run's saved config (same base, same adapters), then the
trainable weights, optimizer state and RNG of the latest checkpoint are restored; data order is a
function of (seed, step), so a resumed CPU run repeats the uninterrupted run's losses exactly.

Not covered: resuming with a different batch size or data (refused by the command).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from crucible.train import checkpoint, schedule
from crucible.train.pretrain import Logger

TRAINABLE = "trainable.safetensors"


class Run:
    def __init__(self, cfg, policy, optimizer, *, progress_bar=None):
        self.cfg, self.policy, self.optimizer = cfg, policy, optimizer
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "run_config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
        self.log = Logger(self.out / "log.jsonl", progress_bar)

    def set_lr(self, step: int, total_steps: int) -> float:
        c = self.cfg
        mult = schedule.lr_multiplier((step + 1) / total_steps, c.warmup, c.warmdown, c.final_lr_frac)
        schedule.apply([self.optimizer], mult)
        return mult

    def save(self, step: int, state: dict) -> Path:
        def save_model(d):
            from safetensors.torch import save_file

            self.policy.save(d)
            trainable = {n: p.detach().contiguous() for n, p in self.policy.model.named_parameters() if p.requires_grad}
            save_file(trainable, str(Path(d) / TRAINABLE))
        return checkpoint.save(self.out, step, save_model=save_model, optimizers=[self.optimizer],
                               state={**state, "step": step}, keep=self.cfg.keep_checkpoints)

    def checkpoint_or_stop(self, state: dict, total: int, stop_after: int | None) -> bool:
        """After a step: every ckpt_every steps a checkpoint; at `stop_after` a checkpoint and True
        (stop now, as if preempted: `--resume` continues)."""
        step = state["step"]
        if step >= total:
            return False
        if stop_after is not None and step >= stop_after:
            self.save(step, state)
            self.log.close()
            return True
        if self.cfg.ckpt_every and step % self.cfg.ckpt_every == 0:
            self.save(step, state)
        return False

    def restore(self) -> dict | None:
        """The latest checkpoint's trainer state (weights, optimizer, RNG restored), or None."""
        from safetensors.torch import load_file

        ckpt = checkpoint.latest(self.out)
        if ckpt is None:
            return None
        weights = load_file(str(ckpt / TRAINABLE), device=str(self.policy.device))
        missing = [n for n, p in self.policy.model.named_parameters() if p.requires_grad and n not in weights]
        if missing:
            raise ValueError(f"{ckpt / TRAINABLE}: lacks {missing[:3]}: not a checkpoint of this run")
        with torch.no_grad():
            for n, p in self.policy.model.named_parameters():
                if n in weights:
                    p.copy_(weights[n])
        return checkpoint.load(ckpt, optimizers=[self.optimizer], map_location=self.policy.device)

    def finish(self, summary: dict) -> dict:
        self.policy.save(self.out)
        tmp = self.out / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
        os.replace(tmp, self.out / "summary.json")
        self.log({"event": "end", **summary})
        self.log.close()
        return summary


def device_of(cfg) -> str:
    if cfg.device != "auto":
        return cfg.device
    return "cuda" if torch.cuda.is_available() else "cpu"


def interval(values) -> str:
    """'mean ± half-width (95% CI)' of per-item values (bootstrap over items)."""
    from crucible.metrics import bootstrap_ci

    values = [float(v) for v in values]
    if not values:
        return "n/a"
    lo, hi = bootstrap_ci(values)
    mean = sum(values) / len(values)
    return f"{mean:.4f} [{lo:.4f}, {hi:.4f}] (95% CI, n={len(values)})"
