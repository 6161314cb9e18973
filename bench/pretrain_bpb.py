"""Bits per byte after the same wall-clock budget, measured after the int6 + zstd round trip:
our recipe vs the plain AdamW baseline, on the default corpus (stdlib + site-packages).

Both runs start at once as two `crucible pretrain` processes with one thread each, so they share
the machine (and any background load) alike, and each stops when its own --max-minutes of
training time is spent; the schedules follow the clock. Then each final checkpoint is exported
with `crucible golf export` (int6 blocks, int8 tables, zstd 22) and scored with `crucible golf
eval` (sliding window, stride = window / 2) on the same validation tokens.

  ours:     the shipped default recipe (NorMuon) + SWA over the warm-down + int6 QAT for the last 15%
  baseline: the shipped baseline_adamw recipe (AdamW, no averaging, no QAT)
Same model (depth 4, width 256), batch, data and budget. Target: ours better by >= 0.05 bpb.

  .venv/bin/python bench/pretrain_bpb.py --minutes 4 --json out.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def crucible(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crucible", *args], cwd=ROOT, text=True, **kw)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=4.0, help="training budget of each run")
    p.add_argument("--out", default="runs/bench/bpb", help="work directory (runs are replaced)")
    p.add_argument("--data", default="runs/bench/data4k", help="prepared default-corpus data (made if missing)")
    p.add_argument("--max-mb", type=float, default=16.0)
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--val-tokens", type=int, default=65536)
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    out = ROOT / args.out
    if out.exists():
        import shutil

        shutil.rmtree(out)
    out.mkdir(parents=True)
    crucible("data", "prepare", "--out", args.data, "--vocab-size", str(args.vocab_size), "--max-mb",
             str(args.max_mb), "--val-fraction", "0.05", "--no-progress", check=True)
    common = ["--data", args.data, "--depth", str(args.depth), "--seq-len", str(args.seq_len),
              "--batch-size", str(args.batch_size), "--max-minutes", str(args.minutes), "--max-steps", "1000000",
              "--eval-every", "0", "--val-tokens", str(args.val_tokens), "--threads", "1", "--no-progress",
              "--log-every", "50"]
    runs = {
        "ours": ["--config", "default", "--average", "swa", "--swa-every", "5",
                 "--qat-bits", "6", "--qat-start", "0.85"],
        "adamw": ["--config", "baseline_adamw"],
    }
    procs = {}
    for name, extra in runs.items():
        log = open(out / f"{name}.log", "w")
        procs[name] = subprocess.Popen([sys.executable, "-m", "crucible", "pretrain", *extra, *common,
                                        "--out", str(out / name)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    for name, proc in procs.items():
        if proc.wait() != 0:
            print((out / f"{name}.log").read_text()[-3000:])
            raise SystemExit(f"{name} run failed")
    results = {}
    for name in runs:
        summary = json.loads((out / name / "summary.json").read_text())
        artifact = out / f"{name}.golf"
        crucible("golf", "export", str(out / name), "--out", str(artifact), check=True, capture_output=True)
        ev = crucible("golf", "eval", str(artifact), "--data", args.data, "--val-tokens", str(args.val_tokens),
                      "--json", "--no-progress", check=True, capture_output=True)
        r = json.loads(ev.stdout)
        results[name] = {"steps": summary["step"], "tokens": summary["tokens"], "train_s": summary["elapsed_s"],
                         "bpb_float": summary["val_bpb"], "bpb_float_ci95": summary["val_bpb_ci95"],
                         "bpb_int6": r["bpb"], "bpb_int6_ci95": r["bpb_ci95"], "artifact_bytes": artifact.stat().st_size,
                         "averaged": summary["averaged"]}
    print(f"default corpus ({args.max_mb:g} MB, vocab {args.vocab_size}), depth {args.depth}, batch "
          f"{args.batch_size}x{args.seq_len}, {args.minutes:g} min each (concurrent, 1 thread each)")
    print(f"  {'run':6s} {'steps':>6s} {'tokens':>10s} {'bpb (float)':>18s} {'bpb (int6+zstd)':>18s} {'artifact':>10s}")
    for name, r in results.items():
        print(f"  {name:6s} {r['steps']:6d} {r['tokens']:10,d} {r['bpb_float']:9.4f} ± {r['bpb_float_ci95']:.4f} "
              f"{r['bpb_int6']:9.4f} ± {r['bpb_int6_ci95']:.4f} {r['artifact_bytes']:10,d}")
    gain = results["adamw"]["bpb_int6"] - results["ours"]["bpb_int6"]
    print(f"  ours better by {gain:.4f} bpb after the int6 round trip (target >= 0.05): "
          f"{'PASS' if gain >= 0.05 else 'FAIL'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results, "gain": gain}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
