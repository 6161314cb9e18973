"""Muon (and its NorMuon variant) for 2-D weight matrices, Adam for everything else.

Muon = SGD with Nesterov momentum whose update is replaced by its nearest semi-orthogonal matrix,
approximated with 5 steps of a quintic Newton–Schulz iteration (the speedrun recipe: coefficients
chosen for a steep slope at zero, so singular values land in roughly [0.7, 1.2] rather than
exactly 1 — fast and good enough). The update is scaled by sqrt(max(1, rows/cols)) so tall and
wide matrices move alike. NorMuon then normalises each row of the orthogonalised update by a
running second moment (Adam-style, per row) and rescales to keep the update's overall norm, which
evens out rows that Newton–Schulz leaves uneven.

Written by hand because torch has no Muon before 2.9 and its built-in one has no NorMuon, no
FSDP2 (DTensor) path and no momentum warm-up hook. Weight decay is decoupled (AdamW-style), and,
as in the speedruns, multiplied by the learning rate.

Distributed: under DDP every rank holds the full averaged gradient and runs the same update (the
redundant compute is small at these sizes). Under FSDP2 each gradient is a sharded DTensor: it is
gathered to the full matrix, orthogonalised, and the rank keeps its own shard of the result.
Not covered: spreading the Newton–Schulz work across ranks (modded-nanogpt's round-robin).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

NS_COEFFS = (3.4445, -4.7750, 2.0315)


@torch.compiler.assume_constant_result     # a fact about the machine: dynamo folds it, not traces it
def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 / AMX), where bf16 matmuls run ~3x
    faster than float32; without it they are emulated and slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def newton_schulz(G: Tensor, steps: int = 5, eps: float = 1e-7) -> Tensor:
    """Approximate U V^T of G = U S V^T (the orthogonal polar factor) for a 2-D (or batched) G.

    bf16 (the speedrun setting) on GPU and on CPUs with native bf16 matmuls; float32 elsewhere."""
    assert G.ndim >= 2
    a, b, c = NS_COEFFS
    X = G.to(torch.bfloat16 if G.is_cuda or cpu_has_bf16() else torch.float32)
    transposed = G.size(-2) > G.size(-1)
    if transposed:  # iterate on the wide form: X X^T is the smaller Gram matrix
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + eps)  # spectral norm <= Frobenius norm <= 1
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + c * (A @ A)
        X = a * X + B @ X
    if transposed:
        X = X.mT
    return X.to(G.dtype)


def _full(t: Tensor) -> Tensor:
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def _like_param(update: Tensor, p: Tensor) -> Tensor:
    """Back to p's layout: for a DTensor parameter, this rank's shard of the full update."""
    if hasattr(p, "device_mesh"):
        from torch.distributed.tensor import distribute_tensor

        return distribute_tensor(update, p.device_mesh, p.placements, src_data_rank=None)
    return update


class Muon(torch.optim.Optimizer):
    """Momentum-orthogonalised SGD for 2-D parameters.

    lr: step size; momentum: its coefficient (warm it up by setting group["momentum"] each step);
    nesterov: look-ahead momentum; ns_steps: Newton–Schulz iterations; weight_decay: decoupled,
    times lr; normuon: row-wise second-moment normalisation with coefficient beta2.
    """

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True,
                 ns_steps: int = 5, weight_decay: float = 0.0, normuon: bool = False,
                 beta2: float = 0.95, eps: float = 1e-8):
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov, ns_steps=ns_steps,
                        weight_decay=weight_decay, normuon=normuon, beta2=beta2, eps=eps)
        super().__init__(params, defaults)
        self.orthogonalize = newton_schulz   # the training loop swaps in its torch.compile
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(f"Muon takes 2-D parameters only, got shape {tuple(p.shape)}")

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                g = p.grad
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(g)
                buf = state["momentum_buffer"]
                buf.lerp_(g, 1 - mu)                      # EMA of gradients
                g = g.lerp(buf, mu) if group["nesterov"] else buf
                update = self.orthogonalize(_full(g), steps=group["ns_steps"])
                rows, cols = update.shape
                if group["normuon"]:
                    update = self._normalize_rows(update, state, group)
                update = update * max(1.0, rows / cols) ** 0.5
                if wd:
                    p.mul_(1 - lr * wd)
                p.add_(_like_param(update, p), alpha=-lr)
        return loss

    @staticmethod
    def _normalize_rows(update: Tensor, state: dict, group: dict) -> Tensor:
        """NorMuon: divide each row by its running RMS, then restore the overall Frobenius norm."""
        row_ms = update.float().square().mean(dim=1, keepdim=True)
        if "row_second_moment" not in state:
            state["row_second_moment"] = torch.zeros_like(row_ms)
        v = state["row_second_moment"]
        v.lerp_(row_ms, 1 - group["beta2"])
        normalized = update.float() / (v.sqrt() + group["eps"])
        scale = update.float().norm() / (normalized.norm() + group["eps"])
        return (normalized * scale).to(update.dtype)


def split_params(model: nn.Module) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """Parameters by role: 'matrix' (2-D weights inside the blocks: Muon), 'embedding' (token
    embeddings, looked up not multiplied), 'head' (lm_head), 'scalar' (norms, gains, biases)."""
    head = getattr(model, "lm_head", None)
    head_ids = {id(p) for p in head.parameters()} if head is not None else set()
    embed_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    groups: dict[str, list] = {"matrix": [], "embedding": [], "head": [], "scalar": []}
    seen = set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))  # tied weights appear once
        if id(p) in embed_ids:
            groups["embedding"].append((name, p))
        elif id(p) in head_ids:
            groups["head"].append((name, p))
        elif p.ndim == 2:
            groups["matrix"].append((name, p))
        else:
            groups["scalar"].append((name, p))
    return groups


def build_optimizers(model: nn.Module, cfg) -> list[torch.optim.Optimizer]:
    """Optimizers for the recipe in `cfg` (a PretrainConfig): 'muon' / 'normuon' (Muon for block
    matrices, Adam for the rest, each role with its own lr) or 'adamw' (one AdamW for everything:
    the no-tricks baseline). Each param group records its base lr as group['base_lr']."""
    groups = split_params(model)
    fused = dict(fused=True) if next(model.parameters()).is_cuda else {}
    betas = (cfg.adam_beta1, cfg.adam_beta2)
    if cfg.optimizer == "adamw":
        decay = [p for _, p in groups["matrix"] + groups["head"] + groups["embedding"]]
        no_decay = [p for _, p in groups["scalar"]]
        opt = torch.optim.AdamW([
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ], lr=cfg.lr, betas=betas, eps=1e-8, **fused)
        optimizers = [opt]
    elif cfg.optimizer in ("muon", "normuon"):
        adam_groups = [
            {"params": [p for _, p in groups["embedding"]], "lr": cfg.embedding_lr, "weight_decay": 0.0},
            {"params": [p for _, p in groups["head"]], "lr": cfg.head_lr, "weight_decay": 0.0},
            {"params": [p for _, p in groups["scalar"]], "lr": cfg.scalar_lr, "weight_decay": 0.0},
        ]
        adam_groups = [g for g in adam_groups if g["params"]]
        optimizers = [torch.optim.Adam(adam_groups, betas=betas, eps=1e-10, **fused)]
        matrices = [p for _, p in groups["matrix"]]
        if matrices:
            optimizers.append(Muon(matrices, lr=cfg.matrix_lr, momentum=cfg.muon_momentum,
                                   weight_decay=cfg.weight_decay, normuon=cfg.optimizer == "normuon"))
    else:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r} (muon, normuon, adamw)")
    for opt in optimizers:
        for g in opt.param_groups:
            g["base_lr"] = g["lr"]
    return optimizers
