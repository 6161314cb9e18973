"""Token shards: a fixed 1 KiB header, then uint16 tokens; and the loader that walks them.

Layout (little-endian): 256 int32 header words — [0] MAGIC, [1] VERSION, [2] token count, the rest
zero — then `count` uint16 tokens. Every document starts with the tokenizer's bos token, so a
shard is a plain concatenation and any window of it is a valid training sequence. The layout is the
one nanoGPT-style speedruns use (header + raw uint16), which keeps shards memory-mappable and lets a
reader check a shard's length without scanning it. uint16 caps the vocabulary at 65,536.

Not covered: vocabularies above 65,536 (would need a uint32 version), compression.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crucible.io import replacing

MAGIC = 0x43525543  # "CRUC"
VERSION = 1
HEADER_WORDS = 256
HEADER_BYTES = HEADER_WORDS * 4
MAX_VOCAB = 1 << 16


class ShardError(ValueError):
    """A shard file is not what it says it is (wrong magic, version, truncated)."""


def write_shard(path: str | Path, tokens: np.ndarray) -> None:
    """Write one shard atomically (temp file + rename), so a killed run leaves no torn shard."""
    path = Path(path)
    tokens = np.asarray(tokens)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= MAX_VOCAB):
        raise ShardError(f"{path}: token ids must fit in uint16")
    header = np.zeros(HEADER_WORDS, dtype="<i4")
    header[:3] = (MAGIC, VERSION, tokens.size)
    with replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.astype("<u2", copy=False).tobytes())


def read_header(path: str | Path) -> int:
    """Validate a shard's header and return its token count."""
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read(HEADER_BYTES)
    if len(raw) < HEADER_BYTES:
        raise ShardError(f"{path}: shorter than the {HEADER_BYTES}-byte header")
    header = np.frombuffer(raw, dtype="<i4")
    if header[0] != MAGIC:
        raise ShardError(f"{path}: bad magic {int(header[0]):#x} (not a crucible token shard)")
    if header[1] != VERSION:
        raise ShardError(f"{path}: unsupported shard version {int(header[1])}")
    count = int(header[2])
    expected = HEADER_BYTES + 2 * count
    if path.stat().st_size != expected:
        raise ShardError(f"{path}: header says {count} tokens but file has {path.stat().st_size} bytes")
    return count


def read_shard(path: str | Path) -> np.ndarray:
    """Memory-map a shard's tokens (read-only uint16 array)."""
    count = read_header(path)
    return np.memmap(path, dtype="<u2", mode="r", offset=HEADER_BYTES, shape=(count,))


def shard_paths(data_dir: str | Path, split: str) -> list[Path]:
    paths = sorted(Path(data_dir).glob(f"{split}_*.bin"))
    if not paths:
        raise FileNotFoundError(f"{data_dir}: no {split}_*.bin shards (run `crucible data prepare`)")
    return paths


class TokenStream:
    """The shards of one split as a single endless stream of tokens, addressed by a global offset.

    `batch(position, B, T)` returns inputs/targets [B, T] read from position (each row is the next
    T+1 tokens, rows overlap by one token), wrapping around at the end of the split. The position is
    a plain integer, so it goes into a checkpoint and a resumed run reads exactly the same batches.
    With several ranks, rank r reads at position + r*B*T and everyone advances by world*B*T.
    """

    def __init__(self, data_dir: str | Path, split: str = "train"):
        self.paths = shard_paths(data_dir, split)
        self.shards = [read_shard(p) for p in self.paths]
        self.starts = np.cumsum([0] + [len(s) for s in self.shards])
        self.total = int(self.starts[-1])
        if self.total < 2:
            raise ShardError(f"{data_dir}: split {split!r} has fewer than 2 tokens")

    def read(self, start: int, n: int) -> np.ndarray:
        """n tokens starting at global offset `start` (mod total), across shard boundaries."""
        out = np.empty(n, dtype=np.int64)
        filled = 0
        pos = start % self.total
        while filled < n:
            i = int(np.searchsorted(self.starts, pos, side="right") - 1)
            local = pos - int(self.starts[i])
            take = min(n - filled, len(self.shards[i]) - local)
            out[filled:filled + take] = self.shards[i][local:local + take]
            filled += take
            pos = (pos + take) % self.total
        return out

    def batch(self, position: int, batch_size: int, seq_len: int):
        import torch

        flat = self.read(position, batch_size * seq_len + 1)
        x = torch.from_numpy(flat[:-1].reshape(batch_size, seq_len).copy())
        y = torch.from_numpy(flat[1:].reshape(batch_size, seq_len).copy())
        return x, y
