"""Train a byte-level BPE tokenizer (with the chat special tokens) on files of text or code.

examples:
  crucible tokenizer train --input corpus/ --vocab-size 32768 --out tok/
  crucible tokenizer train --input code/ docs.jsonl shard.parquet --vocab-size 8192 --max-chars 200000000 --out tok8k/

Inputs are files or directories (walked recursively, hidden entries skipped). A .jsonl, .jsonl.zst or
.jsonl.gz file holds one JSON object per line with a "text" (or "content", "code", "source") field; a
.parquet file such a column (both read as `crucible data prepare` reads them); any other file is one
document, skipped if it is binary (a NUL byte) or not UTF-8. Writes DIR/tokenizer.json and DIR/tokenizer_config.json; prints the compression
(bytes per token, with a 95% bootstrap interval over documents).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crucible.cli import UsageError
from crucible.data.corpus import JSONL_SUFFIXES, CorpusError, iter_source


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    t = sub.add_parser("train", help="train a tokenizer on files of text or code")
    t.add_argument("--input", nargs="+", required=True, metavar="PATH", help="files or directories")
    t.add_argument("--vocab-size", type=int, required=True, metavar="N", help="including 256 bytes + 9 specials")
    t.add_argument("--out", required=True, metavar="DIR", help="where tokenizer.json is written")
    t.add_argument("--max-chars", type=int, default=1_000_000_000, help="stop reading after this many characters")
    t.add_argument("--no-progress", action="store_true")


def iter_files(paths: list[str]):
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"{path}: no such file or directory")
        if path.is_file():
            yield path
            continue
        for sub in sorted(path.rglob("*")):
            rel = sub.relative_to(path)
            if sub.is_file() and not any(part.startswith(".") for part in rel.parts):
                yield sub


def read_documents(path: Path):
    """Documents in one file (a list of str); None if the file is skipped as binary / not UTF-8."""
    if path.name.endswith(JSONL_SUFFIXES) or path.suffix == ".parquet":  # records: crucible.data.corpus
        try:
            return [doc.text for doc in iter_source(path)]
        except UnicodeDecodeError as e:
            raise UsageError(f"{path}: not UTF-8 ({e.reason})") from None
        except (ValueError, OSError) as e:  # CorpusError names file:line; pyarrow's errors are these kinds
            raise UsageError(str(e) if isinstance(e, CorpusError) else f"{path}: cannot read ({e})") from None
    data = path.read_bytes()
    if b"\x00" in data:
        return None
    try:
        return [data.decode("utf-8")]
    except UnicodeDecodeError:
        return None


def bytes_per_token(tokenizer, docs: list[str], *, seed: int = 0, resamples: int = 200):
    """Corpus bytes/token and a 95% bootstrap interval over documents (on up to 2000 documents)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if len(docs) > 2000:
        docs = [docs[i] for i in rng.choice(len(docs), 2000, replace=False)]
    n_bytes = np.array([len(d.encode("utf-8")) for d in docs], dtype=np.float64)
    n_tokens = np.array([len(ids) for ids in tokenizer.encode_batch(docs)], dtype=np.float64)
    point = n_bytes.sum() / max(n_tokens.sum(), 1)
    picks = rng.integers(0, len(docs), size=(resamples, len(docs)))
    boot = n_bytes[picks].sum(1) / np.maximum(n_tokens[picks].sum(1), 1)
    return point, float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def main(args) -> int:
    from tqdm import tqdm

    from crucible.model.tokenizer import SPECIAL_TOKENS, Tokenizer

    minimum = 256 + len(SPECIAL_TOKENS)
    if args.vocab_size < minimum:
        raise UsageError(f"--vocab-size must be at least {minimum} (256 bytes + {len(SPECIAL_TOKENS)} specials)")
    files = list(iter_files(args.input))
    docs, chars, used, skipped = [], 0, 0, 0
    for path in tqdm(files, desc="reading", unit="file", disable=args.no_progress):
        found = read_documents(path)
        if found is None:
            skipped += 1
            continue
        used += 1
        for d in found:
            docs.append(d)
            chars += len(d)
        if chars >= args.max_chars:
            break
    if not docs or chars == 0:
        raise UsageError(f"no text found in {', '.join(args.input)} ({skipped} binary/non-UTF-8 files skipped)")
    tokenizer = Tokenizer.train(docs, args.vocab_size, show_progress=not args.no_progress)
    tokenizer.save(args.out)
    point, lo, hi = bytes_per_token(tokenizer, docs)
    print(f"trained on {used} files ({len(docs)} documents, {chars / 1e6:.2f}M characters; "
          f"skipped {skipped} binary/non-UTF-8 files)")
    print(f"vocab {tokenizer.vocab_size}; {point:.3f} bytes/token on the training documents "
          f"(95% CI {lo:.3f}-{hi:.3f}); wrote {Path(args.out) / 'tokenizer.json'}")
    return 0
