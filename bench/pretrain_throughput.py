"""Training tokens/s on CPU: the `crucible pretrain` loop vs a plain nanoGPT-style loop, same model
size and batch, in one run.

Ours: `crucible.train.pretrain.train` (the real loop: NorMuon + Adam, chunked linear CE, the
native GPT). Plain: a GPT-2-style model written here the way nanoGPT writes it (learned positions,
LayerNorm, GELU MLP, tied head, full logits + F.cross_entropy) with one AdamW — the same depth,
width, heads, vocabulary, sequence length and batch. Rounds alternate ours/plain so background load
on a shared machine hits both alike; the first `--warmup` steps of each run are not timed.
Reports tokens/s, mean ± std over rounds, and the ratio (target >= 1.3x).

  .venv/bin/python bench/pretrain_throughput.py                       # depth 4, width 256, vocab 8k
  .venv/bin/python bench/pretrain_throughput.py --rounds 3 --steps 30 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F


class PlainBlock(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
        self.H = H

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class PlainGPT(nn.Module):
    def __init__(self, vocab, T, L, C, H):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, C), nn.Embedding(T, C)
        self.h = nn.ModuleList(PlainBlock(C, H) for _ in range(L))
        self.ln_f = nn.LayerNorm(C)
        self.lm_head = nn.Linear(C, vocab, bias=False)
        self.lm_head.weight = self.wte.weight
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1)))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


def run_plain(args, mc, stream) -> float:
    torch.manual_seed(0)
    model = PlainGPT(mc.vocab_size, args.seq_len, mc.n_layer, mc.n_embd, mc.n_head)
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1)
    pos, timed, tokens = 0, 0.0, 0
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        x, y = stream.batch(pos, args.batch_size, args.seq_len)
        pos += args.batch_size * args.seq_len
        loss = model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        if step >= args.warmup:
            timed += dt
            tokens += args.batch_size * args.seq_len
    assert math.isfinite(loss.item())
    return tokens / timed


def run_ours(args, out: Path) -> float:
    from crucible.train.config import PretrainConfig
    from crucible.train.pretrain import train

    cfg = PretrainConfig(data=args.data, out=str(out), depth=args.depth, seq_len=args.seq_len,
                         batch_size=args.batch_size, max_steps=args.warmup + args.steps, log_every=args.warmup,
                         eval_every=0, val_tokens=args.seq_len * 4, compile=args.compile, optimizer="normuon",
                         threads=args.threads, dtype=args.ours_dtype)
    train(cfg, progress=False)
    recs = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    rates = [r["tokens_per_s"] for r in recs if r["event"] == "train"][1:]   # the first window is warm-up
    weights = [r["step"] for r in recs if r["event"] == "train"]
    spans = [b - a for a, b in zip(weights, weights[1:])]
    return sum(r * s for r, s in zip(rates, spans)) / sum(spans)            # step-weighted mean


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="runs/bench/data8k", help="prepared data (made from the default corpus if missing)")
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=20, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--compile", default="no", help="our loop's torch.compile setting (no|yes)")
    p.add_argument("--ours-dtype", default="auto", help="our loop's --dtype (auto: bf16 autocast where the CPU "
                                                         "has native bf16; float32 to compare like for like)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for both loops (1: robust on a shared machine)")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from crucible.data.prepare import load_manifest, prepare
    from crucible.data.shards import TokenStream
    from crucible.model.gpt import GPT
    from crucible.train.config import PretrainConfig
    from crucible.train.pretrain import model_config

    if load_manifest(args.data) is None:
        prepare(args.data, vocab_size=8192, max_bytes=8_000_000, progress=False)
    vocab = load_manifest(args.data)["vocab_size"]
    mc = model_config(PretrainConfig(depth=args.depth, seq_len=args.seq_len), vocab)
    ours_params = GPT(mc).num_params()
    plain_params = sum(p.numel() for p in PlainGPT(vocab, args.seq_len, mc.n_layer, mc.n_embd, mc.n_head).parameters())
    stream = TokenStream(args.data, "train")
    results = {"ours": [], "plain": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            results["ours"].append(run_ours(args, Path(tmp) / f"ours{r}"))
            results["plain"].append(run_plain(args, mc, stream))
            print(f"round {r + 1}: ours {results['ours'][-1]:,.0f} tok/s, plain {results['plain'][-1]:,.0f} tok/s",
                  flush=True)
    mean = {k: statistics.mean(v) for k, v in results.items()}
    std = {k: statistics.stdev(v) if len(v) > 1 else float("nan") for k, v in results.items()}
    ratios = [a / b for a, b in zip(results["ours"], results["plain"])]
    print(f"depth {mc.n_layer}, width {mc.n_embd}, {mc.n_head} heads, vocab {vocab}, batch {args.batch_size}x{args.seq_len}, "
          f"{torch.get_num_threads()} threads, ours dtype {args.ours_dtype}; params ours {ours_params / 1e6:.2f}M, plain {plain_params / 1e6:.2f}M (tied)")
    for k in results:
        print(f"  {k:5s} {mean[k]:10,.0f} ± {std[k]:,.0f} tok/s (mean ± std, {args.rounds} rounds)")
    rmean = statistics.mean(ratios)
    rstd = statistics.stdev(ratios) if len(ratios) > 1 else float("nan")
    print(f"  ours / plain: {rmean:.2f}x ± {rstd:.2f} (target >= 1.3x): {'PASS' if rmean >= 1.3 else 'FAIL'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results, "ratio": ratios,
                                               "params": {"ours": ours_params, "plain": plain_params}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
