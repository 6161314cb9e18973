"""Weight averaging over the warm-down: EMA (exponential) or SWA (uniform, every k steps).

Late in a run the weights jitter around a basin; their average sits nearer its centre and scores
better, and it quantises better (parameter-golf records use SWA over the warm-down for that).
Only floating-point parameters are averaged, in float32; buffers are not (the GPT has none that
persist). Under FSDP2 each rank averages its own shards.

Not covered: averaging optimizer state, or several averages at once.
"""

from __future__ import annotations

import torch
from torch import nn


class WeightAverager:
    def __init__(self, mode: str = "ema", decay: float = 0.95, every: int = 5):
        if mode not in ("ema", "swa"):
            raise ValueError(f"averaging mode must be ema or swa, got {mode!r}")
        self.mode, self.decay, self.every = mode, decay, every
        self.avg: dict[str, torch.Tensor] = {}
        self.count = 0
        self.calls = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.calls += 1
        if self.mode == "swa" and (self.calls - 1) % self.every:
            return
        params = {n: p for n, p in model.named_parameters() if p.is_floating_point()}
        if not self.avg:
            self.avg = {n: p.detach().float().clone() for n, p in params.items()}
            self.count = 1
            return
        self.count += 1
        weight = 1.0 / self.count if self.mode == "swa" else 1.0 - self.decay
        for n, p in params.items():
            self.avg[n].lerp_(p.detach().float(), weight)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        for n, p in model.named_parameters():
            if n in self.avg:
                p.copy_(self.avg[n].to(p.dtype))

    def state_dict(self) -> dict:
        return {"mode": self.mode, "avg": self.avg, "count": self.count, "calls": self.calls}

    def load_state_dict(self, state: dict) -> None:
        self.avg, self.count, self.calls = state["avg"], state["count"], state["calls"]
