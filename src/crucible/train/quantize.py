"""Symmetric per-row integer quantisation (int8, int6) with percentile clipping, its fake-quant
(straight-through) twin for quantisation-aware training, and int6 bit-packing.

A row r of a weight matrix is clipped at c_r = the `clip_percentile` quantile of |w_r| (1.0: the
max, no clipping), scaled by s_r = c_r / qmax (qmax = 127 for int8, 31 for int6) and rounded:
q = round(clamp(w / s_r, -qmax, qmax)). Dequantised, every unclipped weight is within s_r / 2 of
its original, and a clipped one is off by exactly |w| - c_r + at most s_r / 2 (the bounds the
tests check). Scales are stored as float16.

`fake_quant` returns dequant(quant(w)) in the forward pass and passes the gradient straight
through (d/dw = identity), so training late in the run with it teaches the weights to sit well on
the grid that export will use.

Not covered: asymmetric / zero-point schemes, group-wise scales, GPTQ-style error feedback.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def qmax_of(bits: int) -> int:
    if bits not in (4, 5, 6, 7, 8):
        raise ValueError(f"bits must be in 4..8, got {bits}")
    return (1 << (bits - 1)) - 1


def row_clip(w: Tensor, clip_percentile: float) -> Tensor:
    """Per-row clip value: the `clip_percentile` quantile of |w| along the last dim, [rows, 1]."""
    a = w.detach().abs().float()
    if clip_percentile >= 1.0:
        return a.amax(dim=-1, keepdim=True)
    k = max(1, min(a.size(-1), int(round(clip_percentile * a.size(-1)))))
    return a.kthvalue(k, dim=-1, keepdim=True).values   # kthvalue: no 16M-element limit, unlike quantile


def quantize_rows(w: Tensor, bits: int = 8, clip_percentile: float = 0.9999) -> tuple[Tensor, Tensor]:
    """(q int8 [R, C], scale float16 [R]) for a 2-D w."""
    qmax = qmax_of(bits)
    w2 = w.detach().float().reshape(w.size(0), -1)
    clip = row_clip(w2, clip_percentile)
    scale = (clip / qmax).clamp_min(1e-12).half().float()   # round-trip through fp16: what is stored
    q = torch.clamp(torch.round(w2 / scale), -qmax, qmax).to(torch.int8)
    return q.reshape(w.shape), scale.squeeze(-1).half()


def dequantize_rows(q: Tensor, scale: Tensor, dtype=torch.float32) -> Tensor:
    return (q.float() * scale.float().reshape(-1, *([1] * (q.ndim - 1)))).to(dtype)


class _FakeQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, bits, clip_percentile):
        q, s = quantize_rows(w, bits, clip_percentile)
        return dequantize_rows(q, s, w.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad, None, None  # straight-through


def fake_quant(w: Tensor, bits: int = 6, clip_percentile: float = 0.9999) -> Tensor:
    return _FakeQuant.apply(w, bits, clip_percentile)


class QATSwap:
    """Quantisation-aware training by weight swapping: `quantize()` replaces each parameter's data
    with its fake-quantised value, forward/backward run on it, and `restore()` puts the
    full-precision weights back before the optimizer step. The gradient at the quantised point is
    applied to the full-precision weight: the straight-through estimator, with no change to the
    model's code (and no effect on torch.compile, which sees the same parameters)."""

    def __init__(self, params: list[Tensor], bits: int, clip_percentile: float):
        self.params, self.bits, self.clip = params, bits, clip_percentile
        self.backup: list[Tensor] = []

    def _tensors(self) -> list[Tensor]:
        # FSDP2 shards rows (dim 0): each rank's local rows quantise exactly as the full matrix would
        return [p.to_local() if hasattr(p, "to_local") else p for p in self.params]

    @torch.no_grad()
    def quantize(self) -> None:
        tensors = self._tensors()
        self.backup = [t.detach().clone() for t in tensors]
        for t in tensors:
            if t.numel():
                q, s = quantize_rows(t, self.bits, self.clip)
                t.copy_(dequantize_rows(q, s, t.dtype))

    @torch.no_grad()
    def restore(self) -> None:
        for t, b in zip(self._tensors(), self.backup):
            t.copy_(b)
        self.backup = []


def pack_int6(q: np.ndarray) -> np.ndarray:
    """int6 values in [-32, 31] -> bytes, four values in three bytes."""
    u = (q.astype(np.int16).reshape(-1) & 0x3F).astype(np.uint8)
    pad = (-u.size) % 4
    u = np.concatenate([u, np.zeros(pad, np.uint8)]).reshape(-1, 4).astype(np.uint32)
    word = u[:, 0] | (u[:, 1] << 6) | (u[:, 2] << 12) | (u[:, 3] << 18)
    return np.stack([word & 0xFF, (word >> 8) & 0xFF, (word >> 16) & 0xFF], axis=1).astype(np.uint8).reshape(-1)


def unpack_int6(packed: np.ndarray, count: int) -> np.ndarray:
    b = packed.reshape(-1, 3).astype(np.uint32)
    word = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    u = np.stack([(word >> s) & 0x3F for s in (0, 6, 12, 18)], axis=1).reshape(-1)[:count]
    return np.where(u >= 32, u.astype(np.int16) - 64, u.astype(np.int16)).astype(np.int8)
