"""Bits-per-byte accounting, sliding-window coverage, and the chunked linear cross-entropy."""

import math
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from crucible.train.evaluate import evaluate_bpb, window_plan
from crucible.train.loss import chunked_cross_entropy, naive_cross_entropy, token_losses




class Bigram(torch.nn.Module):
    """A model whose next-token logits depend only on the current token: logits = table[token]."""

    def __init__(self, table):
        super().__init__()
        V = table.shape[0]
        self.config = SimpleNamespace(softcap=0.0)
        self.lm_head = torch.nn.Linear(V, V, bias=False)
        with torch.no_grad():
            self.lm_head.weight.copy_(torch.as_tensor(table, dtype=torch.float32).T)
        self.V = V

    def hidden(self, idx):
        return F.one_hot(idx, self.V).float()


def test_bpb_matches_hand_computation():
    # vocab: 0 = bos (0 bytes), 1 = "a" (1 byte), 2 = "bc" (2 bytes), 3 = "def" (3 bytes)
    token_bytes = np.array([0, 1, 2, 3])
    table = np.log(np.array([[0.1, 0.6, 0.2, 0.1],     # after bos
                             [0.1, 0.1, 0.4, 0.4],     # after "a"
                             [0.5, 0.25, 0.125, 0.125],  # after "bc"
                             [0.25, 0.25, 0.25, 0.25]]))  # after "def"
    tokens = [0, 1, 2, 3, 0, 1, 3, 1]
    # targets and their probabilities: 1|0 .6, 2|1 .4, 3|2 .125, 0|3 (bos: 0 bytes, not scored),
    # 1|0 .6, 3|1 .4, 1|3 .25  -> bytes 1+2+3+1+3+1 = 11
    nats = -(2 * math.log(0.6) + 2 * math.log(0.4) + math.log(0.125) + math.log(0.25))
    expected = nats / (math.log(2) * 11)
    for window, stride in [(7, 7), (3, 1), (4, 2), (2, 2)]:
        r = evaluate_bpb(Bigram(table), tokens, token_bytes, window=window, stride=stride, batch_size=2)
        assert r["bytes"] == 11 and r["tokens"] == 6
        assert r["bpb"] == pytest.approx(expected, rel=1e-6)
        assert r["nats"] == pytest.approx(nats, rel=1e-6)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.integers(1, 40), st.data())
def test_sliding_window_scores_every_token_exactly_once(n_tokens, window, data):
    stride = data.draw(st.integers(1, window))
    counts = Counter()
    plan = window_plan(n_tokens, window, stride)
    for start, length, first in plan:
        assert 0 <= start and start + length <= n_tokens - 1 + 1 and length <= window
        for j in range(first, length):
            counts[start + 1 + j] += 1
    assert set(counts) == set(range(1, n_tokens))        # every target position...
    assert all(c == 1 for c in counts.values())          # ...exactly once
    if n_tokens - 1 > window:
        assert plan[0] == (0, window, 0)                 # the first window scores all its targets


def test_sliding_window_result_independent_of_stride_for_context_free_model():
    rng = np.random.default_rng(0)
    V = 16
    table = rng.normal(size=(V, V))
    tokens = rng.integers(0, V, size=501)
    token_bytes = rng.integers(0, 4, size=V)
    results = [evaluate_bpb(Bigram(table), tokens, token_bytes, window=32, stride=s, batch_size=4)
               for s in (32, 16, 5, 1)]
    for r in results[1:]:
        assert r["tokens"] == results[0]["tokens"] and r["bytes"] == results[0]["bytes"]
        assert r["nats"] == pytest.approx(results[0]["nats"], rel=1e-9)
    assert results[0]["bpb_ci95"] > 0


def test_a_stream_shorter_than_one_window_still_gets_an_interval():
    rng = np.random.default_rng(1)
    table, tokens = rng.normal(size=(16, 16)), rng.integers(0, 16, size=200)
    r = evaluate_bpb(Bigram(table), tokens, np.ones(16, dtype=int), window=256)
    assert r["windows"] == 1
    assert r["segments"] == 4                            # 199 targets in 64-token segments
    assert math.isfinite(r["bpb_ci95"]) and r["bpb_ci95"] > 0


@pytest.mark.parametrize("softcap", [None, 15.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chunked_ce_equals_naive_loss_and_gradients(softcap, dtype):
    torch.manual_seed(0)
    h = torch.randn(2, 150, 24, dtype=dtype) * 2
    w = torch.randn(700, 24, dtype=dtype)
    y = torch.randint(0, 700, (2, 150))
    y[0, :10] = -1
    h1, w1 = h.clone().requires_grad_(), w.clone().requires_grad_()
    h2, w2 = h.clone().requires_grad_(), w.clone().requires_grad_()
    l1 = naive_cross_entropy(h1, w1, y, softcap)
    l2 = chunked_cross_entropy(h2, w2, y, softcap, chunk_size=37)
    (3 * l1).backward()
    (3 * l2).backward()
    assert l2.item() == pytest.approx(l1.item(), rel=1e-5)
    assert torch.allclose(h1.grad, h2.grad, atol=1e-5) and torch.allclose(w1.grad, w2.grad, atol=1e-5)
    per_token = token_losses(h, w, y, softcap, chunk_size=64)
    assert (per_token[0, :10] == 0).all()
    assert per_token.sum().item() / (y != -1).sum().item() == pytest.approx(l1.item(), rel=1e-5)


def test_chunked_ce_without_grad_and_all_ignored():
    h, w = torch.randn(10, 8), torch.randn(20, 8)
    y = torch.full((10,), -1)
    assert chunked_cross_entropy(h, w, y).item() == 0.0
    with torch.no_grad():
        y = torch.randint(0, 20, (10,))
        assert chunked_cross_entropy(h, w, y).item() == pytest.approx(naive_cross_entropy(h, w, y).item(), rel=1e-5)
