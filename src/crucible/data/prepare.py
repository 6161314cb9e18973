"""`crucible data prepare`: corpus -> tokenizer (trained here unless one is given) -> token shards.

Output directory:
  tokenizer/              the tokenizer used (copied in when --tokenizer is given, so the data and
                          its tokenizer travel together)
  train_000000.bin ...    training shards (see `shards`)
  val_000000.bin ...      validation shards: documents whose content hash falls under val_fraction
  manifest.json           written last: settings, counts, bytes — its presence means "complete"

Deterministic: same sources and settings give byte-identical shards. A complete output is never
re-sharded: asking again with the same settings is a no-op, with different settings an error. A
run killed part-way leaves no manifest, and the next run clears its partial shards and starts over.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from crucible.data.corpus import iter_documents, is_validation
from crucible.data.shards import MAX_VOCAB, write_shard
from crucible.io import atomic_write

MANIFEST = "manifest.json"


class PrepareError(ValueError):
    """The corpus or the settings cannot give a usable output (a user error, not a bug)."""
ENCODE_BATCH = 256


def manifest_settings(sources, vocab_size, tokenizer, val_fraction, max_bytes, shard_tokens) -> dict:
    return {
        "sources": [str(Path(s).resolve()) for s in sources] or ["<default: stdlib + site-packages>"],
        "vocab_size": vocab_size if tokenizer is None else None,
        "tokenizer_from": str(Path(tokenizer).resolve()) if tokenizer else None,
        "val_fraction": val_fraction,
        "max_bytes": max_bytes,
        "shard_tokens": shard_tokens,
    }


def load_manifest(out: str | Path) -> dict | None:
    p = Path(out) / MANIFEST
    return json.loads(p.read_text()) if p.is_file() else None


def _clear_partial(out: Path) -> None:
    for p in list(out.glob("train_*.bin*")) + list(out.glob("val_*.bin*")):
        p.unlink()
    if (out / "tokenizer").is_dir():
        shutil.rmtree(out / "tokenizer")


def _train_tokenizer(sources, max_bytes, val_fraction, vocab_size, tokenizer_bytes):
    from crucible.model.tokenizer import Tokenizer

    def texts():
        for doc in iter_documents(sources, max_bytes=min(max_bytes or tokenizer_bytes, tokenizer_bytes)):
            if not is_validation(doc.text, val_fraction):  # never fit the tokenizer on validation text
                yield doc.text

    return Tokenizer.train(texts(), vocab_size)


class _ShardWriter:
    def __init__(self, out: Path, split: str, shard_tokens: int):
        self.out, self.split, self.shard_tokens = out, split, shard_tokens
        self.buffer: list[np.ndarray] = []
        self.buffered = 0
        self.shards = 0
        self.tokens = 0
        self.documents = 0
        self.bytes = 0

    def add(self, ids: list[int], nbytes: int) -> None:
        arr = np.asarray(ids, dtype=np.uint16)
        self.buffer.append(arr)
        self.buffered += arr.size
        self.tokens += arr.size
        self.documents += 1
        self.bytes += nbytes
        while self.buffered >= self.shard_tokens:
            flat = np.concatenate(self.buffer)
            self._write(flat[:self.shard_tokens])
            rest = flat[self.shard_tokens:]
            self.buffer, self.buffered = ([rest] if rest.size else []), rest.size

    def close(self) -> None:
        if self.buffered:
            self._write(np.concatenate(self.buffer))
        self.buffer, self.buffered = [], 0

    def _write(self, tokens: np.ndarray) -> None:
        write_shard(self.out / f"{self.split}_{self.shards:06d}.bin", tokens)
        self.shards += 1

    def summary(self) -> dict:
        return {"documents": self.documents, "tokens": self.tokens, "text_bytes": self.bytes,
                "shards": self.shards}


def prepare(out: str | Path, sources: list[str] | None = None, tokenizer: str | None = None,
            vocab_size: int = 8192, val_fraction: float = 0.01, max_bytes: int | None = 64_000_000,
            shard_tokens: int = 10_000_000, tokenizer_bytes: int = 16_000_000,
            progress: bool = True) -> dict:
    """Prepare (or find already prepared) shards in `out`; returns the manifest."""
    from tqdm import tqdm

    sources = list(sources or [])
    out = Path(out)
    settings = manifest_settings(sources, vocab_size, tokenizer, val_fraction, max_bytes, shard_tokens)
    existing = load_manifest(out)
    if existing is not None:
        if existing["settings"] != settings:
            diff = [k for k in settings if existing["settings"].get(k) != settings[k]]
            raise PrepareError(f"{out / MANIFEST}: already prepared with different settings "
                             f"({', '.join(diff)}); use another --out or delete it")
        return existing
    if not 0.0 < val_fraction < 1.0:
        raise PrepareError(f"val_fraction must be in (0, 1), got {val_fraction}")
    out.mkdir(parents=True, exist_ok=True)
    _clear_partial(out)

    if tokenizer:
        from crucible.model.tokenizer import Tokenizer

        tok = Tokenizer.load(tokenizer)
    else:
        tok = _train_tokenizer(sources, max_bytes, val_fraction, vocab_size, tokenizer_bytes)
    if tok.vocab_size > MAX_VOCAB:
        raise PrepareError(f"vocab size {tok.vocab_size} does not fit uint16 shards")
    tok.save(out / "tokenizer")

    writers = {s: _ShardWriter(out, s, shard_tokens) for s in ("train", "val")}
    bar = tqdm(total=max_bytes, unit="B", unit_scale=True, desc="tokenizing", disable=not progress)
    batch: list = []

    def flush():
        ids_list = tok.encode_batch([d.text for d in batch])
        for doc, ids in zip(batch, ids_list):
            split = "val" if is_validation(doc.text, val_fraction) else "train"
            nbytes = len(doc.text.encode("utf-8", "surrogatepass"))
            writers[split].add([tok.bos_id] + list(ids), nbytes)
            bar.update(nbytes)
        batch.clear()

    for doc in iter_documents(sources, max_bytes=max_bytes):
        batch.append(doc)
        if len(batch) >= ENCODE_BATCH:
            flush()
    if batch:
        flush()
    bar.close()
    for w in writers.values():
        w.close()
    if writers["train"].tokens < 2 or writers["val"].tokens < 2:
        _clear_partial(out)
        raise PrepareError(f"corpus too small for a train/validation split: "
                         f"{writers['train'].documents} train and {writers['val'].documents} validation "
                         f"documents (raise --val-fraction or add sources)")
    manifest = {"version": 1, "settings": settings, "vocab_size": tok.vocab_size, "bos_id": tok.bos_id,
                "tokenizer": "tokenizer", **{s: w.summary() for s, w in writers.items()}}
    atomic_write(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest
