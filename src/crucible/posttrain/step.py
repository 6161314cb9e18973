"""One optimizer step over several micro-batches, the loss a mean over the whole step's count.

`accumulate(micro_batches, loss_sum, count)` first counts what the step averages over (trained
tokens, or pairs) across every micro-batch and rank, then backpropagates each micro-batch's *sum*
divided by that total. The gradient is then the gradient of the step's mean, however the rows are
split: 1 micro-batch of 8 equals 4 micro-batches of 2 (to float rounding), which averaging each
micro-batch and dividing by their number does not give when they hold different counts.

`optimizer_step` clips the gradient norm (explicitly: post-training is where spikes happen) and
steps. `adamw(model, ...)` is AdamW without weight decay on embeddings, the head and gains.

Not covered: gradient sync control under DDP (post-training here runs on one process).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def accumulate(micro_batches: Sequence, loss_sum: Callable, count: Callable, *,
               all_reduce: Callable[[float], float] | None = None) -> tuple[float, float]:
    """Backward over every micro-batch; returns (mean loss of the step, total count)."""
    total = float(sum(count(mb) for mb in micro_batches))
    if all_reduce is not None:
        total = all_reduce(total)
    if total <= 0:
        return float("nan"), 0.0
    summed = 0.0
    for mb in micro_batches:
        loss = loss_sum(mb)
        (loss / total).backward()
        summed += float(loss.detach())
    return summed / total, total


def optimizer_step(optimizer: torch.optim.Optimizer, params, grad_clip: float) -> float:
    """Clip (if grad_clip > 0), step, zero; returns the gradient norm before clipping."""
    params = list(params)
    if grad_clip > 0:
        norm = float(torch.nn.utils.clip_grad_norm_(params, grad_clip))
    else:
        norm = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None])))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return norm


def adamw(model: torch.nn.Module, *, lr: float, weight_decay: float, betas=(0.9, 0.95)) -> torch.optim.AdamW:
    """AdamW over trainable parameters; weight decay only on matrices inside the blocks."""
    from crucible.train.optim import split_params

    groups = split_params(model)
    decay = [p for _, p in groups["matrix"]]
    rest = [p for _, p in groups["embedding"] + groups["head"] + groups["scalar"]]
    param_groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    opt = torch.optim.AdamW([g for g in param_groups if g["params"]], lr=lr, betas=betas, eps=1e-8)
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]
    return opt
