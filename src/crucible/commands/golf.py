"""Parameter golf: export a checkpoint as a small int6/int8 + zstd artifact, and score it.

examples:
  crucible golf export runs/golf/step_001000 --out golf.bin                  # int6 blocks, int8 tables
  crucible golf export runs/golf --out golf.bin --data data/golf             # size report + bpb
  crucible golf export runs/golf/latest --out golf.bin --bits 8 --table fp16 --budget 16000000
  crucible golf eval golf.bin --data data/default                            # window 1024, stride 512
  crucible golf eval golf.bin --data data/default --window 1024 --stride 64

The size report counts the artifact plus the source code needed to run it, against the budget
(default 16,000,000 bytes). `eval` rebuilds the model from the file alone (decompress, dequantise)
and prints validation bits per byte with a 95% interval; every validation token is scored once.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from crucible.cli import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ex = sub.add_parser("export", help="checkpoint -> artifact")
    ex.add_argument("checkpoint", help="checkpoint directory (RUN/step_N, or RUN: its latest)")
    ex.add_argument("--out", required=True, metavar="FILE")
    ex.add_argument("--bits", type=int, default=6, choices=(6, 8), help="block matrices (default 6)")
    ex.add_argument("--table", default="int8", choices=("int8", "fp16"), help="embeddings and head")
    ex.add_argument("--clip-percentile", type=float, default=0.9999, help="per-row clip quantile of |w|")
    ex.add_argument("--level", type=int, default=22, help="zstd level (default 22)")
    ex.add_argument("--budget", type=int, default=16_000_000, help="bytes allowed (artifact + code)")
    ex.add_argument("--data", metavar="DIR", help="also reload the artifact and score this data's validation split")
    ex.add_argument("--val-tokens", type=int, default=0, help="with --data: score only the first N tokens")
    ev = sub.add_parser("eval", help="score an artifact on a prepared validation split")
    ev.add_argument("artifact")
    ev.add_argument("--data", default="data/default", metavar="DIR", help="prepared data (default data/default)")
    ev.add_argument("--window", type=int, default=0, help="window length (default: the model's seq_len)")
    ev.add_argument("--stride", type=int, default=0, help="stride (default: window/2)")
    ev.add_argument("--val-tokens", type=int, default=0, help="score only the first N tokens (0: all)")
    ev.add_argument("--batch-size", type=int, default=8)
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--json", action="store_true", help="print the result as JSON")
    ev.add_argument("--no-progress", action="store_true")


def _checkpoint_dir(path: str) -> Path:
    """RUN's latest step, or the path itself; loading it raises NotACheckpoint if it is none."""
    p = Path(path)
    if (p / "latest").is_file():
        p = p / (p / "latest").read_text().strip()
    return p


def main(args) -> int:
    from crucible.train import golf

    if args.action == "export":
        if not 0 < args.clip_percentile <= 1:
            raise UsageError(f"--clip-percentile must be in (0, 1], got {args.clip_percentile}")
        try:
            r = golf.export(_checkpoint_dir(args.checkpoint), args.out, bits=args.bits, table=args.table,
                            clip_percentile=args.clip_percentile, level=args.level, budget=args.budget)
        except (FileNotFoundError, ValueError) as e:
            raise UsageError(str(e)) from None
        print(f"artifact {r['artifact']}: {r['artifact_bytes']:,} bytes (int{r['bits']} blocks, {r['table']} "
              f"tables, zstd {r['zstd_level']}; {r['float32_bytes']:,} as float32)")
        print(f"code: {r['code_bytes']:,} bytes ({', '.join(r['code_files'])})")
        print(f"total {r['total_bytes']:,} / budget {r['budget_bytes']:,} bytes: "
              f"{'fits' if r['fits'] else 'OVER BUDGET'}")
        if args.data:
            try:
                e = golf.evaluate_artifact(args.out, args.data, val_tokens=args.val_tokens, progress=False)
            except (FileNotFoundError, ValueError) as err:
                raise UsageError(str(err)) from None
            print(f"after decompress-and-reload: val bpb {e['bpb']:.4f} ± {e['bpb_ci95']:.4f} (95% CI) over "
                  f"{e['tokens']:,} tokens (window {e['window']}, stride {e['stride']})")
        return 0 if r["fits"] else 1
    if not Path(args.artifact).is_file():
        raise UsageError(f"{args.artifact}: no such file")
    try:
        r = golf.evaluate_artifact(args.artifact, args.data, window=args.window, stride=args.stride,
                                   val_tokens=args.val_tokens, batch_size=args.batch_size, device=args.device,
                                   progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(str(e)) from None
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"{r['artifact']}: val bpb {r['bpb']:.4f} ± {r['bpb_ci95']:.4f} (95% CI) over {r['tokens']:,} tokens "
              f"/ {r['bytes']:,} bytes (window {r['window']}, stride {r['stride']}, {r['windows']} windows)")
    return 0
