"""SFT tokens/s on CPU: crucible vs TRL's SFTTrainer, padded and packed each; plus the DPO loss
against TRL's DPOTrainer on the same model and pairs. One run, side by side.

Five SFT variants on the same tiny Hugging Face Llama (made here, no download), the same
prompt/completion examples (only those that fit the sequence length whole, so neither side crops
or drops any), seq len, rows per step, optimizer (AdamW fused, lr 1e-4, betas 0.9/0.95, clip 1.0,
linear decay, float32) and CPU threads (`--threads`, 1 by default):

  crucible_padded   one example per row, rows padded to the longest in the batch
  crucible_packed   best-fit-decreasing rows of seq len, document-masked (crucible's default)
  trl_padded        SFTConfig(packing=False)
  trl_packed        SFTConfig(packing=True): TRL's BFD packing, which turns on its padding-free mode
  trl_padding_free  SFTConfig(padding_free=True) without packing: a batch is one flattened row

Both train only on completion tokens (TRL: completion_only_loss). Throughput counts trained
(completion) tokens per second of the whole train call (crucible's includes rendering and its two
checkpoint writes; TRL's includes its collation, it writes nothing), per wall second and per CPU
second of the process (`time.process_time`: on a shared machine whose load moves, CPU seconds of a
one-thread run are what stays comparable; the ratios use them). Rounds alternate the variants so
background load hits all alike; the summary is the median over rounds. Target: crucible >= 1.5x TRL.

DPO: crucible's sigmoid loss for the policy against a *different* reference model (so the loss is
not trivially log 2) vs TRL's DPOTrainer loss at step 0 for the same model, reference and pairs;
target |difference| < 1e-4; and tokens/s of 4 steps each (crucible's time includes computing its
cached reference log-probs).

  .venv/bin/python bench/posttrain_sft.py                     # needs the bench extra: pip install -e .[bench]
  .venv/bin/python bench/posttrain_sft.py --rounds 3 --steps 20 --no-dpo --json out.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def make_data(tok, n: int, seed: int = 0) -> list[dict]:
    """Prompt/completion pairs from real code: the prompt asks to continue a snippet, the answer
    is the next lines (lengths vary from a few to a few hundred tokens)."""
    from crucible.testing import corpus

    rng = random.Random(seed)
    lines = [line for text in corpus() for line in text.splitlines() if line.strip()]
    rows = []
    for _ in range(n):
        i = rng.randrange(len(lines) - 40)
        a, b = rng.randint(2, 12), rng.randint(2, 25)
        rows.append({"prompt": "Continue this code:\n" + "\n".join(lines[i:i + a]) + "\n",
                     "completion": "\n".join(lines[i + a:i + a + b])})
    return rows


def crucible_sft(base: Path, rows, out: Path, *, steps: int, batch: int, seq_len: int, pack: bool) -> dict:
    from crucible.posttrain import sft
    from crucible.posttrain.config import SFTConfig
    from crucible.posttrain.data import Example
    from crucible.posttrain.policy import load_policy

    policy = load_policy(f"hf:{base}", device="cpu")
    examples = [Example(f"r{i}", prompt=r["prompt"], completion=r["completion"]) for i, r in enumerate(rows)]
    cfg = SFTConfig(model="x", out=str(out), lr=1e-4, adam_beta1=0.9, adam_beta2=0.95, grad_clip=1.0,
                          warmdown=1.0, batch_size=batch, seq_len=seq_len, max_steps=steps, pack=pack,
                          log_every=10_000, val_fraction=0.0)
    t0, c0 = time.perf_counter(), time.process_time()
    sft.train(cfg, policy, examples, [], progress=False)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    tokens = json.loads((out / "summary.json").read_text())["tokens"]   # trained tokens (the loop's count)
    return {"seconds": dt, "cpu_seconds": dc, "trained_tokens": tokens}


TRL_MODES = {"trl_padded": dict(packing=False),
             "trl_packed": dict(packing=True),                     # BFD: TRL turns padding_free on
             "trl_padding_free": dict(packing=False, padding_free=True)}


def trl_sft(base: Path, rows, out: Path, *, steps: int, batch: int, seq_len: int, mode: str) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    options = TRL_MODES[mode]
    # padding-free without packing refuses a max_length (it would not enforce it); the rows fit anyway
    max_length = None if options.get("padding_free") else seq_len
    args = SFTConfig(output_dir=str(out), max_steps=steps, per_device_train_batch_size=batch, learning_rate=1e-4,
                     adam_beta1=0.9, adam_beta2=0.95, max_grad_norm=1.0, lr_scheduler_type="linear",
                     warmup_steps=0, weight_decay=0.0, max_length=max_length, completion_only_loss=True,
                     logging_steps=10_000, save_strategy="no", report_to=[], use_cpu=True, dataloader_num_workers=0,
                     disable_tqdm=True, seed=0, optim="adamw_torch_fused",
                     gradient_checkpointing=False, bf16=False, **options)   # TRL defaults both on: same float32 compute
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    counted = {"tokens": 0}
    original = trainer.compute_loss

    def compute_loss(model, inputs, *a, **k):
        labels = inputs["labels"]
        counted["tokens"] += int((labels[:, 1:] != -100).sum())
        return original(model, inputs, *a, **k)

    trainer.compute_loss = compute_loss
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.train()
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "trained_tokens": counted["tokens"]}


def dpo_check(base: Path, ref_dir: Path, tok, work: Path) -> dict:
    """crucible's DPO loss vs TRL's at step 0 for a policy and a different reference."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from crucible.posttrain import dpo
    from crucible.posttrain.data import Example, Pair
    from crucible.posttrain.losses import dpo_losses
    from crucible.posttrain.policy import load_policy

    rng = random.Random(1)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]
    # prompts end on a token boundary (TRL tokenizes prompt + answer as one text, crucible apart)
    pairs = [{"prompt": f"def {rng.choice(words)}(x):", "chosen": " return x + 1",
              "rejected": f" return {rng.choice(words)}"} for _ in range(16)]
    policy, reference = load_policy(f"hf:{base}", device="cpu"), load_policy(f"hf:{ref_dir}", device="cpu")
    ours_pairs = [Pair(f"p{i}", Example(f"p{i}", prompt=p["prompt"]), p["chosen"], p["rejected"])
                  for i, p in enumerate(pairs)]
    docs = dpo.render_pairs(policy, ours_pairs)
    ref = dpo.reference_logprobs(reference, docs, mean=False)
    with torch.no_grad():
        c, r = dpo.pair_logprobs(policy, docs, list(range(len(pairs))), mean=False)
        ref_c, ref_r = torch.tensor([x[0] for x in ref]), torch.tensor([x[1] for x in ref])
        ours = float(dpo_losses(c, r, ref_c, ref_r, beta=0.1)[0].mean())
    tok_hf = AutoTokenizer.from_pretrained(str(base))
    args = DPOConfig(output_dir=str(work / "trl-dpo"), per_device_train_batch_size=16, beta=0.1, max_steps=1,
                     learning_rate=0.0, report_to=[], use_cpu=True, gradient_checkpointing=False, bf16=False,
                     save_strategy="no", disable_tqdm=True,
                     logging_steps=1, max_length=512)
    # crucible starts a base-model prompt with BOS (as its samplers do); TRL adds none: give it the text
    trl_pairs = [{**p, "prompt": tok_hf.bos_token + p["prompt"]} for p in pairs]
    trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(str(base)),
                         ref_model=AutoModelForCausalLM.from_pretrained(str(ref_dir)), args=args,
                         train_dataset=Dataset.from_list(trl_pairs), processing_class=tok_hf)
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        theirs = float(trainer.compute_loss(trainer.model, batch))
    return {"crucible_loss": ours, "trl_loss": theirs, "abs_diff": abs(ours - theirs)}


def dpo_speed(base: Path, pairs: list[dict], work: Path, *, steps: int, batch: int) -> dict:
    """Tokens/s (prompt + chosen + rejected, real tokens) of `steps` DPO steps: crucible vs TRL.
    crucible's time includes computing its cached reference log-probs; TRL's, its reference forwards."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig as TRLDPOConfig
    from trl import DPOTrainer

    from crucible.posttrain import dpo
    from crucible.posttrain.config import DPOConfig
    from crucible.posttrain.data import Example, Pair
    from crucible.posttrain.policy import load_policy

    used = pairs[:steps * batch]
    policy = load_policy(f"hf:{base}", device="cpu")
    ours_pairs = [Pair(f"p{i}", Example(f"p{i}", prompt=p["prompt"]), p["chosen"], p["rejected"])
                  for i, p in enumerate(used)]
    tokens = sum(len(ids) for ids, _ in dpo.render_pairs(policy, ours_pairs))
    cfg = DPOConfig(model="x", out=str(work / "dpo-ours"), lr=1e-4, batch_size=batch, max_steps=steps,
                    log_every=10_000, seq_len=1024)
    t0 = time.perf_counter()
    dpo.train(cfg, policy, ours_pairs, [], progress=False)
    ours = time.perf_counter() - t0
    tok_hf = AutoTokenizer.from_pretrained(str(base))
    args = TRLDPOConfig(output_dir=str(work / "dpo-trl"), per_device_train_batch_size=batch, beta=0.1, max_steps=steps,
                     learning_rate=1e-4, report_to=[], use_cpu=True, gradient_checkpointing=False, bf16=False,
                     save_strategy="no", disable_tqdm=True, logging_steps=10_000, max_length=1024)
    data = Dataset.from_list([{**p, "prompt": tok_hf.bos_token + p["prompt"]} for p in used])
    trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(str(base)), args=args, train_dataset=data,
                         processing_class=tok_hf)
    t0 = time.perf_counter()
    trainer.train()
    theirs = time.perf_counter() - t0
    return {"tokens": tokens, "crucible_tokens_per_s": tokens / ours, "trl_tokens_per_s": tokens / theirs}


def fitting(rows: list[dict], tok, seq_len: int) -> list[dict]:
    """The rows whose whole text (with BOS and end token, and slack for tokenizing the two parts apart)
    fits seq_len: then crucible drops none and TRL crops none, and both train the same examples."""
    return [r for r in rows if len(tok.encode(r["prompt"])) + len(tok.encode(r["completion"])) + 4 <= seq_len]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads, the same for every variant")
    p.add_argument("--only", nargs="+", choices=["crucible_padded", "crucible_packed", *TRL_MODES],
                   help="run only these variants")
    p.add_argument("--no-dpo", action="store_true", help="skip the DPO comparison")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    try:
        import trl  # noqa: F401
    except ImportError:
        print("TRL is not installed: pip install -e .[bench]", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    from crucible.testing import save_tiny_llama
    from crucible.testing import tokenizer

    tok = tokenizer(1024)
    rows = fitting(make_data(tok, args.steps * args.batch * 3), tok, args.seq_len)
    names = args.only or ["crucible_padded", "crucible_packed", *TRL_MODES]
    results = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = save_tiny_llama(work / "base", tok, n_layer=4, hidden=256)
        for rnd in range(args.rounds):
            for name in (names if rnd % 2 == 0 else names[::-1]):
                out = work / f"{name}-{rnd}"
                if name in TRL_MODES:
                    r = trl_sft(base, rows, out, steps=args.steps, batch=args.batch, seq_len=args.seq_len, mode=name)
                else:
                    r = crucible_sft(base, rows, out, steps=args.steps, batch=args.batch, seq_len=args.seq_len,
                                     pack=name == "crucible_packed")
                r["trained_tokens_per_s"] = r["trained_tokens"] / r["seconds"]
                r["trained_tokens_per_cpu_s"] = r["trained_tokens"] / r["cpu_seconds"]
                results[name].append(r)
                print(f"round {rnd + 1} {name:<17} {r['trained_tokens']:>7,} trained tokens in {r['seconds']:6.1f}s "
                      f"(CPU {r['cpu_seconds']:6.1f}s) = {r['trained_tokens_per_s']:6,.0f} tok/s, "
                      f"{r['trained_tokens_per_cpu_s']:6,.0f} tok/CPU-s", flush=True)
        dpo = None
        if not args.no_dpo:
            dpo = dpo_check(base, save_tiny_llama(work / "ref", tok, n_layer=4, hidden=256, seed=1), tok, work)
            pairs = [{"prompt": r["prompt"], "chosen": " " + r["completion"], "rejected": " pass"} for r in rows]
            dpo.update(dpo_speed(base, pairs, work, steps=4, batch=args.batch))
    summary = {}
    for k, v in results.items():
        wall, cpu = [r["trained_tokens_per_s"] for r in v], [r["trained_tokens_per_cpu_s"] for r in v]
        summary[k] = {"median": statistics.median(cpu), "min": min(cpu), "max": max(cpu),
                      "wall_median": statistics.median(wall), "wall_min": min(wall), "wall_max": max(wall)}
    print(f"\ntrained tokens per CPU second (per wall second), median [min, max] over {args.rounds} rounds "
          f"({len(rows)} examples, seq len {args.seq_len}, {args.batch} rows/step, {args.threads} thread(s)):")
    for k, s in summary.items():
        print(f"  {k:<17} {s['median']:8,.0f} [{s['min']:,.0f}, {s['max']:,.0f}]   "
              f"({s['wall_median']:,.0f} [{s['wall_min']:,.0f}, {s['wall_max']:,.0f}])")
    ratios = {}
    for ours, theirs in (("crucible_padded", "trl_padded"), ("crucible_packed", "trl_packed"),
                         ("crucible_packed", "trl_padding_free"), ("crucible_packed", "crucible_padded"),
                         ("trl_packed", "trl_padded")):
        if ours in summary and theirs in summary:
            ratios[f"{ours}/{theirs}"] = summary[ours]["median"] / summary[theirs]["median"]
    trl_best = max((k for k in summary if k in TRL_MODES), key=lambda k: summary[k]["median"], default=None)
    ours_best = max((k for k in summary if k not in TRL_MODES), key=lambda k: summary[k]["median"], default=None)
    if trl_best and ours_best:
        ratios[f"best crucible ({ours_best}) / best TRL ({trl_best})"] = \
            summary[ours_best]["median"] / summary[trl_best]["median"]
    for k, v in ratios.items():
        print(f"  {k:<55} {v:.2f}x per CPU second" + ("   (target >= 1.5x)" if k.startswith("best") else ""))
    if dpo:
        print(f"DPO loss at step 0: crucible {dpo['crucible_loss']:.6f}, TRL {dpo['trl_loss']:.6f}, "
              f"|diff| {dpo['abs_diff']:.2e} (target < 1e-4)")
        print(f"DPO tokens/s: crucible {dpo['crucible_tokens_per_s']:,.0f}, TRL {dpo['trl_tokens_per_s']:,.0f} "
              f"({dpo['crucible_tokens_per_s'] / dpo['trl_tokens_per_s']:.2f}x)")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "summary": summary, "ratios": ratios, "dpo": dpo,
                                               "examples": len(rows), "threads": args.threads}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
