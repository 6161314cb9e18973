"""Prepare pretraining data: corpus -> tokenizer -> token shards with a train/validation split.

examples:
  crucible data prepare --out data/default                      # stdlib + site-packages, offline
  crucible data prepare --out data/mine --source src/ --source notes.jsonl --vocab-size 16384
  crucible data prepare --out data/hf --source ~/datasets/the-stack-smol   # save_to_disk output
  crucible data prepare --out data/x --source corpus.parquet --tokenizer runs/tok
  crucible data info data/default
  crucible data filter chats.jsonl --out clean.jsonl                # SFT data: rejects per rule
  crucible data filter chats.parquet --out clean.jsonl --config filters.toml

Sources: directories of source files, JSONL / JSONL.gz (field text, content, code or source),
parquet, text files, and Hugging Face datasets saved with save_to_disk (read with pyarrow).
A complete output is never re-sharded; the same command again is a no-op. `filter` drops SFT
records by declarative rules and reports each rule's rejections (see docs/posttrain.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from crucible.cli import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    prep = sub.add_parser("prepare", help="tokenize a corpus into shards")
    prep.add_argument("--out", required=True, metavar="DIR", help="output directory")
    prep.add_argument("--source", action="append", default=[], metavar="PATH",
                      help="file or directory (repeatable; default: stdlib + site-packages)")
    prep.add_argument("--tokenizer", metavar="DIR", help="use this tokenizer instead of training one")
    prep.add_argument("--vocab-size", type=int, default=8192, help="tokenizer to train (default 8192)")
    prep.add_argument("--val-fraction", type=float, default=0.01, help="share of documents for validation")
    prep.add_argument("--max-mb", type=float, default=64.0, help="stop after this many MB of text (0: all)")
    prep.add_argument("--shard-tokens", type=int, default=10_000_000, help="tokens per shard")
    prep.add_argument("--tokenizer-mb", type=float, default=16.0, help="MB of text to train the tokenizer on")
    prep.add_argument("--no-progress", action="store_true")
    info = sub.add_parser("info", help="print a prepared directory's manifest")
    info.add_argument("dir")
    filt = sub.add_parser("filter", help="filter post-training records (regex, length, format, duplicates)")
    filt.add_argument("input", metavar="IN", help="JSONL, parquet or save_to_disk directory")
    filt.add_argument("--out", required=True, metavar="OUT.jsonl", help="kept records; OUT.report.json beside it")
    filt.add_argument("--config", metavar="filters.toml", help="rules (default: the built-in set)")


def main(args) -> int:
    if args.action == "filter":
        return filter_records(args)
    if args.action == "info":
        from crucible.data.prepare import load_manifest

        m = load_manifest(args.dir)
        if m is None:
            raise UsageError(f"{args.dir}: not a prepared data directory (no manifest.json)")
        print(json.dumps(m, indent=2))
        return 0

    from crucible.data.prepare import prepare
    from crucible.data.shards import ShardError

    for s in args.source:
        if not Path(s).exists():
            raise UsageError(f"{s}: no such file or directory")
    if args.max_mb < 0 or args.shard_tokens < 1 or args.tokenizer_mb <= 0:
        raise UsageError("--max-mb must be >= 0, --shard-tokens and --tokenizer-mb > 0")
    from crucible.data.prepare import load_manifest

    if load_manifest(args.out) is not None:
        print(f"{args.out}: already prepared (manifest.json present); checking settings, not re-sharding")
    try:
        m = prepare(args.out, sources=args.source, tokenizer=args.tokenizer, vocab_size=args.vocab_size,
                    val_fraction=args.val_fraction, max_bytes=int(args.max_mb * 1e6) or None,
                    shard_tokens=args.shard_tokens, tokenizer_bytes=int(args.tokenizer_mb * 1e6),
                    progress=not args.no_progress)
    except (ValueError, ShardError, FileNotFoundError) as e:
        raise UsageError(str(e)) from None
    for split in ("train", "val"):
        s = m[split]
        print(f"{split}: {s['documents']:,} documents, {s['tokens']:,} tokens, {s['text_bytes']:,} bytes "
              f"({s['text_bytes'] / max(s['tokens'], 1):.2f} bytes/token), {s['shards']} shard(s)")
    print(f"vocab {m['vocab_size']}, tokenizer in {Path(args.out) / m['tokenizer']}")
    return 0


def filter_records(args) -> int:
    import os

    from crucible.data.corpus import CorpusError, iter_records
    from crucible.posttrain.filters import FilterConfigError, load_filters, run_filters

    try:
        filters = load_filters(args.config)
        kept, report = run_filters(iter_records(args.input), filters)
    except (FilterConfigError, CorpusError, FileNotFoundError) as e:
        raise UsageError(str(e)) from None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, text in ((out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept)),
                       (out.with_name(out.name + ".report.json"), json.dumps(report, indent=2) + "\n")):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    print(f"kept {report['kept']:,} of {report['total']:,} records -> {out}")
    for rule, r in sorted(report["rules"].items(), key=lambda kv: -kv[1]["count"]):
        print(f"  {rule:<24} {r['count']:>7,}  {100 * r['share']:5.1f}%   e.g. {', '.join(r['examples'])}")
    return 0
