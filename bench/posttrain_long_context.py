"""Long-context SFT cost on CPU: tokens/s and peak memory at seq len 256, 512, 1024, 2048 on a tiny
native model whose base context is 256, with the RoPE base scaled for the longer runs.

The recipe it measures is `crucible sft --seq-len L --rope-theta THETA` (docs/posttrain.md): each
length trains the same number of tokens per step (`--tokens-per-step`, rows = tokens / L), on
prompt/completion documents of 70-100% of L tokens (one per row, so attention really spans the
context), through `posttrain.sft.train` with packing on. THETA = 10000 x L / 256 (the base scaled
with the context, the simple rule talkie's 4e7 at 64K follows in spirit); 10000 at 256.

Each length runs in its own process, so its peak resident memory (ru_maxrss) is its own; the
table shows it and the part added by training (peak minus the resident size once the model and
data are loaded). Throughput: trained tokens per CPU second of the whole train call
(`time.process_time`: what stays comparable on a loaded shared machine; rendering and the final
checkpoint included), and the median of the loop's per-step tokens/s (wall clock) after the first
step. One torch thread by default.

  .venv/bin/python bench/posttrain_long_context.py
  .venv/bin/python bench/posttrain_long_context.py --lengths 256 1024 --steps 4 --json out.json

Not covered: GPU memory (the same command on a GPU reports the allocator's peak in the run log),
quality at the longer context (this measures cost only).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_LEN, BASE_THETA = 256, 10000.0


def rss_mb() -> float:
    """Current resident set (Linux /proc), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def documents(tok, seq_len: int, n: int, seed: int = 0):
    """Prompt/completion examples of 70-100% of seq_len tokens (a short prompt, a long completion)."""
    from crucible.posttrain.data import Example
    from crucible.testing import corpus

    rng = random.Random(seed)
    words = " ".join(corpus()).split()
    out = []
    for i in range(n):
        target = rng.randint(int(0.7 * seq_len), seq_len) - 24
        start = rng.randrange(len(words) - 4 * seq_len)
        ids = tok.encode(" ".join(words[start:start + 4 * seq_len]))[:target]
        out.append(Example(f"doc{i}", prompt="Continue:", completion=tok.decode(ids)))
    return out


def one(seq_len: int, steps: int, tokens_per_step: int, threads: int) -> dict:
    """Train at one length in this process; the measurements."""
    import torch

    from crucible.posttrain import sft
    from crucible.posttrain.config import SFTConfig
    from crucible.posttrain.policy import load_policy
    from crucible.testing import random_gpt, tokenizer

    torch.set_num_threads(threads)
    tok = tokenizer(1024)
    rows = max(1, tokens_per_step // seq_len)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        random_gpt(tok, n_layer=4, n_embd=128, seq_len=BASE_LEN).save_pretrained(work / "base", tok)
        policy = load_policy(f"native:{work / 'base'}", device="cpu")
        examples = documents(tok, seq_len, rows * steps)
        theta = BASE_THETA * seq_len / BASE_LEN
        cfg = SFTConfig(model="x", out=str(work / "run"), lr=1e-4, batch_size=rows, seq_len=seq_len, max_steps=steps,
                        pack=True, rope_theta=theta if seq_len > BASE_LEN else 0.0, log_every=1, val_fraction=0.0)
        loaded = rss_mb()
        t0, c0 = time.perf_counter(), time.process_time()
        sft.train(cfg, policy, examples, [], progress=False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        tokens = json.loads((work / "run" / "summary.json").read_text())["tokens"]
        log = [json.loads(line) for line in (work / "run" / "log.jsonl").read_text().splitlines()]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per_step = [r["tokens_per_s"] for r in log if r.get("event") == "train"][1:]     # the loop's timer, warm steps
    return {"seq_len": seq_len, "rope_theta": theta if seq_len > BASE_LEN else BASE_THETA, "rows_per_step": rows,
            "steps": steps, "trained_tokens": tokens, "train_wall_s": wall, "train_cpu_s": cpu,
            "tokens_per_cpu_s": tokens / cpu, "step_tokens_per_s_median": statistics.median(per_step),
            "peak_rss_mb": peak, "loaded_rss_mb": loaded, "training_rss_mb": peak - loaded}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048])
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--tokens-per-step", type=int, default=8192)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)      # internal: measure one length, print JSON
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(one(args.one, args.steps, args.tokens_per_step, args.threads)), flush=True)
        return 0
    results = []
    for seq_len in args.lengths:
        cmd = [sys.executable, __file__, "--one", str(seq_len), "--steps", str(args.steps),
               "--tokens-per-step", str(args.tokens_per_step), "--threads", str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if out.returncode != 0 or not lines:
            print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
            return 1
        r = json.loads(lines[-1][len("RESULT "):])
        results.append(r)
        print(f"seq len {seq_len:>5} (theta {r['rope_theta']:>9,.0f}, {r['rows_per_step']:>2} rows/step): "
              f"{r['trained_tokens']:>7,} trained tokens, {r['tokens_per_cpu_s']:6,.0f} tok/CPU-s "
              f"({r['step_tokens_per_s_median']:,.0f} tok/s per step, wall), "
              f"peak RSS {r['peak_rss_mb']:,.0f} MiB (+{r['training_rss_mb']:,.0f} training)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
