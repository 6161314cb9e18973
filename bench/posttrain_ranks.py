"""SFT on several processes, on CPU: trained tokens/s of 1 rank vs 2 ranks (torchrun, gloo; DDP and
FSDP2) on the same global batch, through the real `crucible sft` command.

Arms, each a fresh run of the same steps on the same tiny native model (4 layers, width 128, made
here) and the same prompt/completion documents (70-100% of the sequence length, packed):

  1x1        one process, one torch thread
  1x2        one process, two threads (what 2 cores give a single process)
  2x1-ddp    torchrun --nproc_per_node 2, one thread per rank, DDP
  2x1-fsdp   the same with --dist fsdp (FSDP2)

Throughput is the loop's own figure: trained tokens of the step on all ranks per second of rank
0's step time, the median over the steps after the first (the first includes warm-up). The wall
seconds of the whole command (process start, torchrun's rendezvous, rendering, checkpoints) are
shown beside it. Rounds alternate the arms so background load hits all alike; the summary is the
median over rounds. On a 2-core box the 2-rank arms compete with each other for the cores, so this
measures the overhead of the gradient exchange as much as any gain.

  .venv/bin/python bench/posttrain_ranks.py
  .venv/bin/python bench/posttrain_ranks.py --rounds 3 --steps 12 --json out.json

Not covered: GPUs (the same commands on GPUs use NCCL), more than one node.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from posttrain_long_context import documents  # noqa: E402  (the same long documents)

ARMS = {"1x1": (1, 1, "ddp"), "1x2": (1, 2, "ddp"), "2x1-ddp": (2, 1, "ddp"), "2x1-fsdp": (2, 1, "fsdp")}


def prepare(work: Path, seq_len: int, n: int) -> None:
    from crucible.testing import random_gpt, tokenizer

    tok = tokenizer(1024)
    random_gpt(tok, n_layer=4, n_embd=128, seq_len=seq_len).save_pretrained(work / "base", tok)
    rows = [{"prompt": ex.prompt, "completion": ex.completion} for ex in documents(tok, seq_len, n)]
    (work / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def run_arm(work: Path, name: str, args) -> dict:
    ranks, threads, mode = ARMS[name]
    out = work / f"run-{name}-{time.monotonic_ns()}"
    launcher = [sys.executable] if ranks == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                    "--nproc_per_node", str(ranks)]
    cmd = [*launcher, "-m", "crucible", "sft", "--model", f"native:{work / 'base'}", "--data", str(work / "docs.jsonl"),
           "--out", str(out), "--seq-len", str(args.seq_len), "--batch-size", str(args.batch_size),
           "--micro-batch", str(args.batch_size // 2), "--max-steps", str(args.steps), "--log-every", "1",
           "--val-fraction", "0", "--device", "cpu", "--dist", mode, "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    steps = [r for r in log if r["event"] == "train"]
    return {"arm": name, "tokens_per_s": statistics.median(r["tokens_per_s"] for r in steps[1:]),
            "wall_s": wall, "final_loss": steps[-1]["loss"],
            "trained_tokens": json.loads((out / "summary.json").read_text())["tokens"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=16, help="rows per step, all ranks")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prepare(work, args.seq_len, 4 * args.batch_size)
        for round_ in range(args.rounds):
            for name in args.arms:
                r = {"round": round_, **run_arm(work, name, args)}
                results.append(r)
                print(f"round {round_} {name:>9}: {r['tokens_per_s']:7,.0f} trained tok/s (median step), "
                      f"{r['wall_s']:5.1f} s wall, final loss {r['final_loss']:.4f}", flush=True)
    base = statistics.median(r["tokens_per_s"] for r in results if r["arm"] == args.arms[0])
    for name in args.arms:
        rates = [r["tokens_per_s"] for r in results if r["arm"] == name]
        walls = [r["wall_s"] for r in results if r["arm"] == name]
        print(f"{name:>9}: {statistics.median(rates):7,.0f} tok/s [{min(rates):,.0f}, {max(rates):,.0f}] "
              f"(median [min, max] of {len(rates)} rounds), {statistics.median(rates) / base:.2f}x {args.arms[0]}, "
              f"{statistics.median(walls):.1f} s wall")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
