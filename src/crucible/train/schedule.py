"""Learning-rate and Muon-momentum schedules as pure functions of training progress.

Progress is a fraction in [0, 1]: steps done / total steps, or — with a wall-clock budget
(`--max-minutes`) — seconds trained / seconds allowed, so the warm-down lands at the end of the
budget however fast the machine is. The lr multiplier is trapezoidal (the speedrun schedule):
linear warm-up over `warmup` of the run, flat, then linear warm-down over the last `warmdown` to
`final_lr_frac`. Muon's momentum warms from 0.85 to its target over the first `momentum_warmup_steps`
optimizer steps (counted in steps even under a wall-clock budget: it is about optimizer state).

Kept as functions, not torch LR schedulers, because several optimizers share one schedule and the
progress under a time budget is not a step count.
"""

from __future__ import annotations


def lr_multiplier(progress: float, warmup: float, warmdown: float, final_lr_frac: float = 0.0) -> float:
    progress = min(max(progress, 0.0), 1.0)
    if warmup > 0 and progress < warmup:
        return max(progress / warmup, 0.02)  # never a wasted zero-lr first step
    if warmdown > 0 and progress > 1.0 - warmdown:
        left = (1.0 - progress) / warmdown
        return final_lr_frac + (1.0 - final_lr_frac) * left
    return 1.0


def in_warmdown(progress: float, warmdown: float) -> bool:
    return warmdown > 0 and progress > 1.0 - warmdown


def muon_momentum(step: int, target: float = 0.95, start: float = 0.85, warmup_steps: int = 300) -> float:
    if warmup_steps <= 0:
        return target
    frac = min(step / warmup_steps, 1.0)
    return (1 - frac) * start + frac * target


def apply(optimizers, lr_mult: float, momentum: float | None = None) -> None:
    """Set every group's lr to base_lr * lr_mult, and Muon groups' momentum."""
    for opt in optimizers:
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * lr_mult
            if momentum is not None and "ns_steps" in g:
                g["momentum"] = momentum
