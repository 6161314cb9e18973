"""Rendered examples into training rows: packed (best-fit-decreasing, document-masked) or padded.

A rendered example (ids, mask) becomes inputs ids[:-1] and targets ids[1:], a target being -1 (not
trained) wherever the mask says so. Packing puts whole documents into rows of `seq_len` tokens by
best-fit-decreasing (longest first, each into the row it fills most tightly; about 1-2% padding on
chat data, against 30-60% padded), and records per token which document it belongs to:
`segments` for the native GPT (positions restart, attention stays inside the document) and
restarting `position_ids` for Hugging Face models (transformers builds the same block-diagonal mask
from them when no attention mask is given). Padding fills the end of a row as its own document
(`segments`), with targets -1; its position ids continue the last document's, so that a padded
row of one document reads to transformers as unpacked: plain causal attention (SDPA's causal
kernel, no mask tensor), harmless because causal attention never lets a real token see the
padding after it.

The Python here runs once per micro-batch on at most rows x seq_len ints (microseconds against a
forward); profiles of an SFT step show the time in the model's forward and backward.

A document longer than `seq_len` is never cut (a cropped assistant turn would teach the model to
stop mid-answer): it is dropped and reported (`Plan.dropped`), and the caller says how many.

Not covered: splitting long documents across rows with a carried-over context.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import torch

IGNORE = -1


@dataclass
class Plan:
    rows: list[list[int]]        # indices of the documents in each row
    dropped: list[int]           # documents longer than seq_len (not trained)


@dataclass
class Batch:
    input_ids: torch.Tensor      # [B, T]
    targets: torch.Tensor        # [B, T], -1 where nothing is trained
    segments: torch.Tensor       # [B, T] document number of each token (padding: its own)
    position_ids: torch.Tensor   # [B, T] restarting at each document

    @property
    def n_tokens(self) -> int:
        return int((self.targets != IGNORE).sum())


def shifted(ids: list[int], mask: list[int]) -> tuple[list[int], list[int]]:
    """(inputs, targets) for next-token prediction; targets -1 where the mask is 0."""
    return ids[:-1], [t if m else IGNORE for t, m in zip(ids[1:], mask[1:])]


def best_fit_decreasing(lengths: list[int], capacity: int) -> list[list[int]]:
    """Bins (lists of indices) of total length <= capacity; every length must fit on its own."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    space: list[tuple[int, int]] = []       # (room left, bin number), sorted
    bins: list[list[int]] = []
    for i in order:
        at = bisect.bisect_left(space, (lengths[i], -1))
        if at < len(space):
            room, b = space.pop(at)
        else:
            room, b = capacity, len(bins)
            bins.append([])
        bins[b].append(i)
        if room - lengths[i] > 0:
            bisect.insort(space, (room - lengths[i], b))
    return bins


def plan(lengths: list[int], seq_len: int, *, packed: bool) -> Plan:
    """Rows for documents whose shifted lengths are `lengths` (len(ids) - 1)."""
    fits = [i for i, n in enumerate(lengths) if 0 < n <= seq_len]
    dropped = [i for i, n in enumerate(lengths) if n > seq_len]
    if not packed:
        return Plan([[i] for i in fits], dropped)
    rows = best_fit_decreasing([lengths[i] for i in fits], seq_len)
    return Plan([[fits[j] for j in row] for row in rows], dropped)


def collate(rows: list[list[int]], docs: list[tuple[list[int], list[int]]], pad_id: int,
            width: int | None = None) -> Batch:
    """A batch of rows (each a list of document indices into `docs`, (ids, mask) pairs), padded
    to `width` (default: the longest row)."""
    shifted_docs = {i: shifted(*docs[i]) for row in rows for i in row}
    width = width or max(sum(len(shifted_docs[i][0]) for i in row) for row in rows)
    inputs, targets, segments, positions = [], [], [], []
    for row in rows:
        x, y, seg, pos = [], [], [], []
        for n, i in enumerate(row):
            xi, yi = shifted_docs[i]
            x += xi
            y += yi
            seg += [n] * len(xi)
            pos += list(range(len(xi)))
        pad = width - len(x)
        if pad < 0:
            raise ValueError(f"a row of {len(x)} tokens does not fit width {width}")
        inputs.append(x + [pad_id] * pad)
        targets.append(y + [IGNORE] * pad)
        segments.append(seg + [len(row)] * pad)
        positions.append(pos + list(range(len(xi), len(xi) + pad)))     # continue the last document
    as_long = lambda rows_: torch.tensor(rows_, dtype=torch.long)  # noqa: E731
    return Batch(as_long(inputs), as_long(targets), as_long(segments), as_long(positions))

