"""Cross-entropy of a linear head without materialising the full [tokens, vocab] logits.

The loss of a language model is CE(softcap(h @ W^T), y). Done naively, the logits, their softmax
and their gradient are three [N, V] float32 tensors: at N = 8k tokens and V = 32k that is 3 GiB,
usually the largest activation in a small model. `chunked_cross_entropy` walks the rows in chunks
and, in the forward pass itself, computes each chunk's loss *and* its gradients with respect to h
and W (the softmax-minus-one-hot trick, as Liger's fused kernel does), so only one chunk's logits
ever exist and nothing is kept for backward but dh [N, C] and dW [V, C]. Backward just scales them.

On CUDA with `liger-kernel` installed, `linear_cross_entropy` uses Liger's fused Triton kernel
instead (imported lazily: it is an optional dependency). Dynamo must not trace it (its Python
crashes inductor: `addmm ... out_dtype`), so `fused_kernel(device, softcap)` tells the caller when
it is in play and the training loop then compiles only the model's trunk (loop.SplitLoss).
`token_losses` is the no-grad, per-token variant used for bits-per-byte evaluation.

Under torch.compile the chunked loss traces as one graph (fullgraph): no host sync (the eager CPU
shortcut for "no ignored target" is a `bool()` and is skipped when compiling or on a GPU, where it
would stall the stream), and at most MAX_TRACED_CHUNKS chunks, because dynamo unrolls the loop: 512
chunks of a 32-row x 65k-token batch would take minutes to compile.

Not covered: label smoothing, z-loss, reductions other than the mean over targets != ignore_index.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

IGNORE_INDEX = -1
MAX_TRACED_CHUNKS = 8        # chunks per call when compiled (the loop is unrolled)
FUSED_DEVICES = ("cuda",)    # device types on which a fused kernel (Liger) replaces ours
SYNC_FREE_DEVICES = ("cpu",)  # device types whose tensors the host reads without stalling a queue


def _chunk_logits(h: Tensor, weight: Tensor, softcap: float | None):
    """float32 logits of one chunk, and tanh of the capped ones (needed for the cap's gradient)."""
    z = (h @ weight.t()).float()
    if softcap:
        t = z.div_(softcap).tanh_()          # in place: big fresh buffers cost page faults on CPU
        return t * softcap, t
    return z, None


def _default_chunk(vocab: int) -> int:
    return max(16, (1 << 22) // max(vocab, 1))   # about 4M logits (16 MiB float32) per chunk


class _ChunkedLinearCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, targets: Tensor, softcap, chunk_size: int):
        n = hidden.size(0)
        need_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        valid = targets != IGNORE_INDEX
        # the unmasked shortcut costs a host sync: only in eager mode on CPU (where it is free)
        all_valid = (hidden.device.type in SYNC_FREE_DEVICES and not torch.compiler.is_compiling()
                     and bool(valid.all()))
        count = valid.sum().clamp_min(1).float()
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_h = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        grad_w = torch.zeros_like(weight, dtype=torch.float32) if ctx.needs_input_grad[1] else None
        for start in range(0, n, chunk_size):
            h = hidden[start:start + chunk_size]
            y = targets[start:start + chunk_size]
            ok = valid[start:start + chunk_size]
            logits, t = _chunk_logits(h, weight, softcap)
            y_safe = y if all_valid else torch.where(ok, y, torch.zeros_like(y))
            picked = logits.gather(1, y_safe[:, None]).squeeze(1)
            # logsumexp by hand, in place: logits becomes exp(logits - max), then the softmax
            peak = logits.amax(dim=-1, keepdim=True)
            probs = logits.sub_(peak).exp_()
            sums = probs.sum(dim=-1, keepdim=True)
            lse = peak.squeeze(1) + sums.log().squeeze(1)
            total += ((lse - picked) * ok).sum()
            if not need_grad:
                continue
            # d(loss_i)/d(logits_i) = softmax - onehot, zero for ignored rows
            grad = probs.div_(sums)
            grad[torch.arange(grad.size(0), device=grad.device), y_safe] -= 1.0
            if not all_valid:
                grad.mul_(ok[:, None])
            if t is not None:
                grad.mul_(t.square_().neg_().add_(1.0))   # through softcap * tanh(z / softcap)
            grad = grad.to(hidden.dtype)
            # plain matmuls (not in-place addmm_), so that autocast runs them in bf16 where enabled
            if grad_h is not None:
                grad_h[start:start + chunk_size] = grad @ weight.to(hidden.dtype)
            if grad_w is not None:
                grad_w += grad.t() @ h
        loss = total / count
        if need_grad:
            if grad_h is not None:
                grad_h.div_(count.to(grad_h.dtype))
            if grad_w is not None:
                grad_w.div_(count)
            ctx.save_for_backward(grad_h if grad_h is not None else torch.empty(0),
                                  grad_w.to(weight.dtype) if grad_w is not None else torch.empty(0))
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        grad_h, grad_w = ctx.saved_tensors
        gh = grad_h * grad_loss.to(grad_h.dtype) if ctx.needs_input_grad[0] else None
        gw = grad_w * grad_loss.to(grad_w.dtype) if ctx.needs_input_grad[1] else None
        return gh, gw, None, None, None


def chunked_cross_entropy(hidden: Tensor, weight: Tensor, targets: Tensor, softcap: float | None = None,
                          chunk_size: int | None = None) -> Tensor:
    """Mean CE over targets != -1 of softcap(hidden @ weight^T). hidden [..., C], targets [...]."""
    hidden = hidden.reshape(-1, hidden.size(-1))
    targets = targets.reshape(-1)
    chunk_size = chunk_size or _default_chunk(weight.size(0))
    if torch.compiler.is_compiling():
        chunk_size = max(chunk_size, -(-hidden.size(0) // MAX_TRACED_CHUNKS))
    return _ChunkedLinearCE.apply(hidden, weight, targets, softcap, chunk_size)


def naive_cross_entropy(hidden: Tensor, weight: Tensor, targets: Tensor, softcap: float | None = None) -> Tensor:
    """The reference: full logits, then F.cross_entropy (what the chunked version must equal)."""
    logits = (hidden.reshape(-1, hidden.size(-1)) @ weight.t()).float()
    if softcap:
        logits = softcap * torch.tanh(logits / softcap)
    return F.cross_entropy(logits, targets.reshape(-1), ignore_index=IGNORE_INDEX)


def _liger_loss(softcap):
    """Liger's fused linear CE, or None when not on offer (not installed)."""
    try:
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss
    except ImportError:
        return None
    try:
        return LigerFusedLinearCrossEntropyLoss(ignore_index=IGNORE_INDEX, softcap=softcap)
    except TypeError:  # an old Liger without softcap
        return None if softcap else LigerFusedLinearCrossEntropyLoss(ignore_index=IGNORE_INDEX)


_LIGER: dict = {}


def fused_kernel(device: torch.device, softcap: float | None):
    """The fused linear-CE kernel `linear_cross_entropy` uses on `device` (Liger's, on CUDA when
    installed), or None: ours. Whoever compiles must keep such a kernel out of dynamo's way."""
    if torch.device(device).type not in FUSED_DEVICES:
        return None
    if softcap not in _LIGER:
        _LIGER[softcap] = _liger_loss(softcap)
    return _LIGER[softcap]


def linear_cross_entropy(hidden: Tensor, weight: Tensor, targets: Tensor, softcap: float | None = None,
                         impl: str = "chunked") -> Tensor:
    """The training loss. impl: 'chunked' (Liger when on CUDA and installed, else ours) or 'naive'."""
    if impl == "naive":
        return naive_cross_entropy(hidden, weight, targets, softcap)
    kernel = fused_kernel(hidden.device, softcap)
    if kernel is not None:
        return kernel(weight, hidden.reshape(-1, hidden.size(-1)), targets.reshape(-1))
    return chunked_cross_entropy(hidden, weight, targets, softcap)


@torch.no_grad()
def token_losses(hidden: Tensor, weight: Tensor, targets: Tensor, softcap: float | None = None,
                 chunk_size: int | None = None) -> Tensor:
    """Per-token CE in nats (float32, same shape as targets; 0 where target == -1), chunked."""
    shape = targets.shape
    hidden = hidden.reshape(-1, hidden.size(-1))
    targets = targets.reshape(-1)
    chunk_size = chunk_size or _default_chunk(weight.size(0))
    out = torch.zeros(targets.shape, dtype=torch.float32, device=hidden.device)
    for start in range(0, hidden.size(0), chunk_size):
        logits, _ = _chunk_logits(hidden[start:start + chunk_size], weight, softcap)
        y = targets[start:start + chunk_size]
        ok = y != IGNORE_INDEX
        loss = F.cross_entropy(logits, torch.where(ok, y, torch.zeros_like(y)), reduction="none")
        out[start:start + chunk_size] = loss * ok
    return out.reshape(shape)
