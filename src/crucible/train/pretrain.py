"""Pretraining (`crucible pretrain`): a GPT from scratch on a token stream, through the shared loop.

What is pretraining's own: the model (built from the recipe's shape), the data (prepared shards,
prepared on first use; micro-batches read from the token stream at a position that a checkpoint
records), the loss (hidden states -> chunked linear cross-entropy), the evaluation (bits per byte
on the validation split), the log's start and end lines and `RUN/summary.json`. The step, the
schedules, QAT, averaging, checkpoints and the loop itself are `loop.py`'s, shared with
post-training. Per optimizer step:
  progress (steps done / max_steps, or seconds trained / --max-minutes budget)
  -> lr multiplier (warm-up, flat, warm-down) and Muon momentum (warm-up) for every group
  -> [late in the run] swap in fake-quantised matrices (QAT, straight-through)
  -> grad_accum micro-steps: next batch from the token stream, hidden states -> chunked linear CE
     (bf16 autocast on GPU), backward (gradient sync only on the last micro-step)
  -> restore full-precision weights, optional grad clip, every optimizer steps
  -> [in the warm-down] update the EMA / SWA average
  -> log line (loss, lr, tokens/s, MFU on GPU), validation bpb every eval_every, checkpoint.
At the end: the averaged weights (if any) replace the raw ones when they score better, final bpb,
a checkpoint, and `RUN/summary.json`.

Everything a resumed run needs — weights, optimizer state, step, data position, RNG, the average,
seconds trained — is in the checkpoint, so on CPU with a fixed seed `--resume` continues bit-exactly
(with a wall-clock budget the schedule follows measured time, which no resume can reproduce).

bf16 autocast is on for GPUs and for CPUs with native bf16 matmuls (AVX512-BF16 / AMX: about 3x
float32's matmul speed); `--dtype float32` turns it off.

On CUDA the batches are copied from pinned memory without blocking, and the step makes no host
sync (loop.py), so the next batch is read while the GPU still runs the last step.

Not covered: data loading in a background thread (the shard reads are memory-mapped and cheap next
to a step); torch.compile on CPU is off by default (`--compile yes` turns it on): compiling a tiny
model took about 4 minutes on the shared lab machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import torch

from crucible.train import checkpoint, dist, loop
from crucible.train.config import PretrainConfig
from crucible.train.loss import fused_kernel, linear_cross_entropy


def model_config(cfg: PretrainConfig, vocab_size: int):
    from crucible.model.gpt import GPTConfig

    overrides = dict(softcap=cfg.softcap, tie_embeddings=cfg.tie_embeddings, unet_skips=cfg.unet_skips,
                     value_embeds=cfg.value_embeds)
    if cfg.n_embd:
        overrides["n_embd"] = cfg.n_embd
    if cfg.head_dim:
        width = cfg.n_embd or GPTConfig.from_depth(cfg.depth, vocab_size).n_embd
        if width % cfg.head_dim:
            raise ValueError(f"head_dim {cfg.head_dim} does not divide the width {width}")
        overrides["n_head"] = width // cfg.head_dim
        overrides["n_kv_head"] = overrides["n_head"] // 2 if overrides["n_head"] % 2 == 0 else overrides["n_head"]
    return GPTConfig.from_depth(cfg.depth, vocab_size, seq_len=cfg.seq_len, **overrides)


def flops_per_token(model) -> float:
    """6 N (matmul weights, forward + backward) + attention's 12 L C T, as nanochat counts."""
    c = model.config
    n = model.num_params(embeddings=False)
    return 6 * n + 12 * c.n_layer * c.n_embd * c.seq_len


def language_model_loss(impl: str = "chunked") -> loop.SplitLoss:
    """loss_fn for (inputs, targets) micro-batches: the model's hidden states (the trunk) through the
    chunked linear cross-entropy (never the full logits), mean over the targets. The head stays out
    of torch.compile when it is a fused kernel (Liger on CUDA)."""
    def trunk(model, data) -> tuple:
        x, y = data
        return model.hidden(x), y

    def head(model, h, y) -> torch.Tensor:
        return linear_cross_entropy(h, model.lm_head.weight, y, model.config.softcap or None, impl)

    def eager_head(model) -> bool:
        device = model.lm_head.weight.device
        return impl != "naive" and fused_kernel(device, model.config.softcap or None) is not None

    return loop.SplitLoss(trunk, head, eager_head)


def token_batches(stream, position: int, batch_size: int, seq_len: int,
                  info: dist.DistInfo) -> Iterator[loop.MicroBatch]:
    """Micro-batches [B, T] from the token stream: rank r reads at position + r*B*T, and every
    rank advances by world*B*T (the stream wraps around at its end)."""
    B, T = batch_size, seq_len
    pin = info.device.type == "cuda"     # pinned host memory: the copy runs asynchronously
    while True:
        x, y = stream.batch(position + info.rank * B * T, B, T)
        position += info.world * B * T
        if pin:
            x, y = x.pin_memory(), y.pin_memory()
        yield loop.MicroBatch((x.to(info.device, non_blocking=True), y.to(info.device, non_blocking=True)),
                              tokens=B * T, position=position)


def gpt_writer(model, tokenizer):
    """write_model for a native GPT: HF-loadable `save_pretrained` output with the tokenizer."""
    def write(d: Path, weights: dict | None) -> None:
        if weights is None:
            model.save_pretrained(d, tokenizer)
            return
        from crucible.model.gpt import GPT

        cpu_model = GPT(model.config)     # FSDP2: the gathered weights, in a plain CPU copy
        cpu_model.load_state_dict(weights)
        cpu_model.save_pretrained(d, tokenizer)
    return write


def ensure_data(cfg: PretrainConfig, info: dist.DistInfo, progress: bool) -> dict:
    """The manifest of cfg.data, preparing it first (on rank 0) when it is not there."""
    from crucible.data.prepare import load_manifest, prepare

    manifest = load_manifest(cfg.data)
    if manifest is None:
        if info.master:
            print(f"preparing {cfg.data} from {', '.join(cfg.sources) or 'the default corpus'} "
                  f"({cfg.max_mb:g} MB cap, vocab {cfg.vocab_size}) ...", flush=True)
            prepare(cfg.data, sources=cfg.sources, vocab_size=cfg.vocab_size,
                    val_fraction=cfg.val_fraction, max_bytes=int(cfg.max_mb * 1e6), progress=progress)
        dist.barrier(info)
        manifest = load_manifest(cfg.data)
    return manifest


def bpb_evaluation(cfg: PretrainConfig, data_dir: Path, tokenizer, info: dist.DistInfo,
                   autocast_dtype) -> loop.Evaluation:
    """Validation bits per byte (sliding window, exact byte accounting) on the first val_tokens."""
    from crucible.data.shards import TokenStream
    from crucible.train.evaluate import evaluate_bpb

    val_stream = TokenStream(data_dir, "val")
    val_tokens = val_stream.read(0, min(val_stream.total, cfg.val_tokens or val_stream.total))
    token_bytes = tokenizer.token_bytes()
    gather = (lambda v: dist.all_gather_lists(v, info)) if info.world > 1 else None

    def score(model) -> dict:
        return evaluate_bpb(model, val_tokens, token_bytes, window=cfg.seq_len, stride=cfg.eval_stride or cfg.seq_len,
                            batch_size=max(1, cfg.batch_size), device=info.device, autocast_dtype=autocast_dtype,
                            rank=info.rank, world=info.world, gather=gather)

    def describe(r: dict) -> str:
        return f"val bpb {r['bpb']:.4f} ± {r['bpb_ci95']:.4f} (95% CI) | loss {r['loss']:.4f} nats/token"

    return loop.Evaluation(score=score, metric="bpb", describe=describe)


def train(cfg: PretrainConfig, *, resume: bool = False, stop_after: int | None = None,
          progress: bool = True) -> dict:
    """Run (or resume) pretraining in cfg.out; returns the summary. `stop_after`: stop (with a
    checkpoint) after that many steps in total, as if preempted."""
    from tqdm import tqdm

    from crucible.data.shards import TokenStream
    from crucible.model.gpt import GPT
    from crucible.model.tokenizer import Tokenizer

    info = dist.init(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    master = info.master
    if master:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    manifest = ensure_data(cfg, info, progress and master)
    tokenizer = Tokenizer.load(Path(cfg.data) / manifest["tokenizer"])

    torch.manual_seed(cfg.seed)
    model = GPT(model_config(cfg, tokenizer.vocab_size)).to(info.device)
    ckpt = checkpoint.require_latest(out) if resume else None
    if ckpt is not None:
        loaded = GPT.from_pretrained(ckpt, device=info.device)
        model.load_state_dict(loaded.state_dict())
        del loaded
    state = loop.setup(cfg, model, language_model_loss(cfg.loss), info, write_model=gpt_writer(model, tokenizer),
                       resume_from=ckpt)
    evaluation = bpb_evaluation(cfg, Path(cfg.data), tokenizer, info, state.autocast_dtype)
    batches = token_batches(TokenStream(cfg.data, "train"), state.position, cfg.batch_size, cfg.seq_len, info)

    B, T, A, W = cfg.batch_size, cfg.seq_len, cfg.grad_accum, info.world
    tokens_per_step = B * T * A * W
    bar = tqdm(total=cfg.max_steps, initial=state.step, desc="pretrain", unit="step",
               disable=not (progress and master), dynamic_ncols=True)
    log = loop.Logger(out / "log.jsonl", bar if progress and master else None, enabled=master)
    try:
        log({"event": "start", "step": state.step, "params": model.num_params(),
             "tokens_per_step": tokens_per_step, "world": W, "device": str(info.device)},
            f"{model.summary()}\n{tokens_per_step} tokens/step ({B}x{T} x {A} accum x {W} ranks), "
            f"optimizer {cfg.optimizer}, "
            f"{'%g min budget' % cfg.max_minutes if cfg.max_minutes else '%d steps' % cfg.max_steps}")
        result = loop.fit(state, batches, evaluation, log=log, bar=bar, stop_after=stop_after,
                          flops_per_token=flops_per_token(model))
        if result.stopped_at is not None:
            return {"stopped_at": result.stopped_at, "out": str(out)}
        final = result.final
        summary = {"step": state.step, "tokens": state.tokens, "elapsed_s": state.elapsed,
                   "val_bpb": final["bpb"], "val_bpb_ci95": final["bpb_ci95"], "val_loss": final["loss"],
                   "val_tokens_scored": final["tokens"], "averaged": result.averaged,
                   "checkpoint": str(result.checkpoint), "params": model.num_params(), "optimizer": cfg.optimizer}
        if master:
            tmp = out / "summary.json.tmp"
            tmp.write_text(json.dumps(summary, indent=2) + "\n")
            os.replace(tmp, out / "summary.json")
            log({"event": "end", **summary},
                f"done: {state.step} steps, {state.tokens:,} tokens in {state.elapsed:.0f}s; "
                f"val bpb {final['bpb']:.4f} ± {final['bpb_ci95']:.4f} (95% CI); checkpoint {result.checkpoint}")
        return summary
    finally:
        log.close()
