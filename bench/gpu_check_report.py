"""Gathers the figures of one bench/gpu_check.sh run into one JSON object (printed to stdout).

Per step: its exit code, seconds and whether it timed out (OUT/steps.jsonl). Per pretraining run:
the first step's seconds (torch.compile included when compiled), tokens/s, MFU and peak memory as
`crucible pretrain` logged them, as mean ± std over the log windows after the first (which holds
the warm-up), and the final validation bpb with its 95% interval. The loss benchmark's and the
engine benchmark's own JSON, and the golf artifact's size and bpb. A missing file is a missing
figure (null), never an error: the point is to report whatever did run.

  python bench/gpu_check_report.py runs/gpu_check --mode gpu > runs/gpu_check/gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

PRETRAIN_RUNS = ("d12_compile", "d12_eager", "d20_compile", "d20_eager", "golf")


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass                      # a line cut short by a timeout
    return out


def mean_std(xs: list[float]) -> dict | None:
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"mean": statistics.fmean(xs), "std": statistics.stdev(xs) if len(xs) > 1 else None, "n": len(xs)}


def t95(xs: list[float]) -> dict | None:
    """Mean and 95% half-width (Student t) of repeated measurements."""
    if not xs:
        return None
    half = None
    if len(xs) > 1:
        t = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57}.get(len(xs), 2.0)
        half = t * statistics.stdev(xs) / math.sqrt(len(xs))
    return {"mean": statistics.fmean(xs), "ci95": half, "n": len(xs)}


def pretrain_figures(run: Path) -> dict | None:
    records = read_jsonl(run / "log.jsonl")
    if not records:
        return None
    start = next((r for r in records if r["event"] == "start"), {})
    first = next((r for r in records if r["event"] == "first_step"), {})
    windows = [r for r in records if r["event"] == "train"]
    steady = windows[1:] or windows
    summary_path = run / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return {
        "params": start.get("params"), "tokens_per_step": start.get("tokens_per_step"),
        "first_step_s": first.get("seconds"), "compiled": first.get("compiled"),
        "steps": windows[-1]["step"] if windows else 0,
        "tokens_per_s": mean_std([r["tokens_per_s"] for r in steady]),
        "mfu": mean_std([r.get("mfu") for r in steady]),
        "peak_mem_mb": max((r.get("peak_mem_mb") or 0 for r in windows), default=None),
        "loss_last": windows[-1]["loss"] if windows else None,
        "val_bpb": summary.get("val_bpb"), "val_bpb_ci95": summary.get("val_bpb_ci95"),
    }


def last_json(path: Path) -> dict | None:
    """The last JSON object a log ends with (one line, or indented over several)."""
    if not path.is_file():
        return None
    lines = path.read_text().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("{"):
            try:
                return json.loads("\n".join(lines[i:]))
            except json.JSONDecodeError:
                continue
    return None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--mode", default="gpu")
    args = p.parse_args()
    out = args.out
    report = {"mode": args.mode, "env": (out / "env.txt").read_text().strip() if (out / "env.txt").is_file() else None,
              "steps": {s["name"]: s for s in read_jsonl(out / "steps.jsonl")}}
    report["pretrain"] = {name: pretrain_figures(out / name) for name in PRETRAIN_RUNS}
    loss = out / "loss.json"
    report["loss"] = json.loads(loss.read_text()) if loss.is_file() else None
    engine = read_jsonl(out / "engine.jsonl")
    if engine:
        e = engine[-1]
        report["engine"] = {"decode": e.get("decode"), "greedy_equal": e.get("greedy_equal"),
                            "speedup_vs_hf": t95(e["speedup"]), "native_tokens_per_s": t95(e["native_tokens_per_s"]),
                            "hf_tokens_per_s": t95(e["hf_tokens_per_s"]), "params": e.get("params")}
    else:
        report["engine"] = None
    artifact = out / "golf.bin"
    report["golf"] = {"artifact_bytes": artifact.stat().st_size if artifact.is_file() else None,
                      "eval": last_json(out / "golf_eval.log")}
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
