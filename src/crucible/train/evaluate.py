"""Bits per byte on a token stream, with exact byte accounting and sliding-window scoring.

bpb = (sum over scored targets of -ln p(target)) / (ln 2 * sum of UTF-8 bytes of those targets),
where a target's bytes are `tokenizer.token_bytes()[target]` — the bytes that token decodes to,
not an average bytes-per-token ratio — so models with different tokenizers compare fairly. Targets
with zero bytes (special tokens such as the bos that starts each document) are left out of both
sums, as nanochat does: they carry no text.

Sliding window (window W, stride S <= W): window k reads tokens [kS, kS + W) and predicts the W
tokens after each of its inputs; the first window scores all W of its targets, every later window
only the targets no earlier window scored (its last S, the ones with the most context), and the
last window is pulled back to end exactly at the stream's end. Every target of the stream (tokens
1..N-1) is scored exactly once — `window_plan` is what the tests check. (A known bug elsewhere
scores only the last S targets of *every* window, so the first W - S tokens are never scored.)
With S = W this is plain non-overlapping evaluation.

Not covered: document-aware windows (a window may span a bos boundary; the model sees the bos).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from crucible.train.loss import token_losses

SEGMENT = 64  # tokens per unit of the bpb interval


def window_plan(n_tokens: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """[(start, length, first_scored)]: window reads tokens[start:start+length] and scores its
    targets tokens[start+1+j] for j in [first_scored, length)."""
    if window < 1 or not 1 <= stride <= window:
        raise ValueError(f"need window >= 1 and 1 <= stride <= window, got W={window} S={stride}")
    n_targets = n_tokens - 1
    if n_targets < 1:
        return []
    if n_targets <= window:
        return [(0, n_targets, 0)]
    plan, scored_until, start = [], 0, 0   # targets 1..scored_until are scored
    while scored_until < n_targets:
        end = min(start + window, n_targets)
        start = end - window
        plan.append((start, window, scored_until - start))
        scored_until = end
        start += stride
    return plan


def bits_per_byte(nats: float, nbytes: int) -> float:
    return nats / (math.log(2) * nbytes) if nbytes else float("nan")


@torch.no_grad()
def evaluate_bpb(model, tokens, token_bytes, window: int, stride: int | None = None, batch_size: int = 8,
                 device="cpu", autocast_dtype=None, rank: int = 0, world: int = 1, gather=None, progress: bool = False) -> dict:
    """Score `tokens` (1-D ints) with `model` (our GPT: .hidden, .lm_head, .config.softcap).

    Returns nats, bytes, scored tokens, loss (nats per scored token), bpb and its 95% interval.
    With world > 1 each rank scores every world-th window and `gather(list) -> list` (an
    all-gather) merges the per-window sums of all ranks before the totals are taken; every rank
    runs the same number of forwards (FSDP2 gathers weights in each)."""
    stride = stride or window
    tokens = torch.as_tensor(np.asarray(tokens, dtype=np.int64))
    tb = torch.as_tensor(np.asarray(token_bytes), dtype=torch.float64)
    full_plan = window_plan(len(tokens), window, stride)
    plan = full_plan[rank::world]
    # every rank runs as many forwards as rank 0 (which has the most windows): under FSDP2 each forward
    # gathers shards from all ranks, so a rank that ran out of windows still takes part, scoring nothing
    rounds = -(-len(full_plan[0::world]) // batch_size)
    softcap = getattr(model.config, "softcap", None) or None
    was_training = model.training
    model.eval()
    window_nats: list[float] = []
    window_bytes: list[float] = []
    scored = windows = 0
    from tqdm import tqdm

    for i in tqdm(range(0, rounds * batch_size, batch_size), desc="eval", disable=not progress, leave=False):
        group = plan[i:i + batch_size]
        if not group:
            start, length, _ = full_plan[0]
            with torch.autocast(device_type=torch.device(device).type, dtype=autocast_dtype,
                                enabled=autocast_dtype is not None):
                model.hidden(tokens[start:start + length][None].to(device))
            continue
        for length in sorted({g[1] for g in group}):   # only the tiny-stream case has a short window
            rows = [g for g in group if g[1] == length]
            x = torch.stack([tokens[s:s + length] for s, _, _ in rows]).to(device)
            y = torch.stack([tokens[s + 1:s + 1 + length] for s, _, _ in rows])
            mask = torch.zeros(len(rows), length, dtype=torch.bool)
            for r, (_, _, first) in enumerate(rows):
                mask[r, first:] = True
            with torch.autocast(device_type=torch.device(device).type, dtype=autocast_dtype,
                                enabled=autocast_dtype is not None):
                h = model.hidden(x)
            losses = token_losses(h, model.lm_head.weight, y.to(device), softcap).double().cpu()
            byte_counts = tb[y]
            keep = mask & (byte_counts > 0)
            # the interval's units are SEGMENT-token pieces of windows, so a stream shorter than
            # one window (a tiny validation set) still gets an interval
            for nats_part, bytes_part in zip((losses * keep).split(SEGMENT, dim=1),
                                             (byte_counts * keep).split(SEGMENT, dim=1)):
                window_nats += nats_part.sum(dim=1).tolist()
                window_bytes += bytes_part.sum(dim=1).tolist()
            windows += len(rows)
            scored += int(keep.sum())
    model.train(was_training)
    if gather is not None:
        window_nats, window_bytes = gather(window_nats), gather(window_bytes)
        scored, windows = sum(gather([scored])), sum(gather([windows]))
    return {**summarize(window_nats, window_bytes, scored), "windows": windows}


def summarize(segment_nats: list[float], segment_bytes: list[float], scored: int) -> dict:
    """Totals, bpb, and a 95% interval for bpb from the spread across segments (ratio estimator:
    Var(R) ~ sum((n_i - R b_i)^2) / (k (k-1) mean(b)^2)); segments with no bytes do not count."""
    n = np.asarray(segment_nats, dtype=np.float64)
    b = np.asarray(segment_bytes, dtype=np.float64)
    n, b = n[b > 0], b[b > 0]
    nats, nbytes, k = float(n.sum()), float(b.sum()), len(n)
    bpb = bits_per_byte(nats, nbytes)
    half = float("nan")
    if k > 1 and nbytes > 0:
        r = nats / nbytes
        var = float(((n - r * b) ** 2).sum()) / (k * (k - 1) * (b.mean() ** 2))
        half = 1.96 * math.sqrt(var) / math.log(2)
    return {"nats": nats, "bytes": int(nbytes), "tokens": scored, "segments": k,
            "loss": nats / scored if scored else float("nan"), "bpb": bpb, "bpb_ci95": half}
