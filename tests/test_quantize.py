"""Per-row int8 / int6 quantisation: error bounds, clipping, bit-packing, straight-through QAT."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from crucible.train.quantize import (QATSwap, dequantize_rows, fake_quant, pack_int6, quantize_rows,
                                     row_clip, unpack_int6)




@pytest.mark.parametrize("bits,qmax", [(8, 127), (6, 31)])
@pytest.mark.parametrize("pct", [1.0, 0.99])
def test_quantize_dequantize_error_bounds(bits, qmax, pct):
    torch.manual_seed(0)
    w = torch.randn(48, 200) * torch.rand(48, 1) * 3
    w[3, 7] = 40.0                                     # an outlier the percentile should clip
    q, scale = quantize_rows(w, bits, pct)
    assert q.dtype == torch.int8 and q.abs().max() <= qmax and scale.dtype == torch.float16
    d = dequantize_rows(q, scale)
    s = scale.float()[:, None]
    clip = row_clip(w, pct)
    inside = w.abs() <= clip
    # unclipped weights: at most half a step off (plus fp16 rounding of the scale, relative 1e-3)
    err = (w - d).abs()
    assert (err[inside] <= (s / 2 + 1e-3 * w.abs())[inside] + 1e-6).all()
    # clipped weights: off by their excess over the clip, plus at most half a step
    excess = (w.abs() - clip).clamp_min(0)
    assert (err <= excess + s / 2 + 1e-3 * w.abs() + 1e-6).all()
    if pct < 1.0:
        assert err[3, 7] > 30                          # the outlier was clipped, not the row's scale blown up
        assert scale[3].float() < 40 / qmax


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-32, 31), min_size=0, max_size=50))
def test_int6_pack_roundtrip(values):
    q = np.array(values, dtype=np.int8)
    packed = pack_int6(q)
    assert packed.size == 3 * ((len(values) + 3) // 4)
    assert np.array_equal(unpack_int6(packed, len(values)), q)


def test_fake_quant_is_straight_through():
    w = torch.randn(8, 16, requires_grad=True)
    out = fake_quant(w, bits=6, clip_percentile=1.0)
    q, s = quantize_rows(w, 6, 1.0)
    assert torch.equal(out.detach(), dequantize_rows(q, s))
    g = torch.randn(8, 16)
    out.backward(g)
    assert torch.equal(w.grad, g)


def test_qat_swap_restores_exactly():
    lin = torch.nn.Linear(32, 16, bias=False)
    original = lin.weight.detach().clone()
    swap = QATSwap([lin.weight], bits=6, clip_percentile=0.9999)
    swap.quantize()
    assert not torch.equal(lin.weight, original)
    assert len(torch.unique(lin.weight[0])) <= 63      # on a 6-bit grid
    lin(torch.randn(4, 32)).sum().backward()           # gradient taken at the quantised point
    swap.restore()
    assert torch.equal(lin.weight, original) and lin.weight.grad is not None
