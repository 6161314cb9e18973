"""The pretraining loop: `crucible pretrain`.

One loop for a laptop CPU and for `torchrun` on GPUs. Per optimizer step:
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

Not covered: data loading in a background thread (the shard reads are memory-mapped and cheap next
to a step); torch.compile on CPU is off by default (`--compile yes` turns it on): compiling a tiny
model took about 4 minutes on the shared lab machine.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
from torch import nn

from crucible.train import checkpoint, dist, schedule
from crucible.train.config import PretrainConfig
from crucible.train.loss import linear_cross_entropy

PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12,
              "4090": 165e12, "B200": 2250e12}


class LossModule(nn.Module):
    """The model plus its loss, as one module, so DDP/FSDP/compile see the whole step's forward:
    hidden states through the chunked linear cross-entropy, never the full logits."""

    def __init__(self, model: nn.Module, impl: str = "chunked"):
        super().__init__()
        self.model = model
        self.impl = impl

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.model.hidden(x)
        return linear_cross_entropy(h, self.model.lm_head.weight, y, self.model.config.softcap or None, self.impl)


def model_config(cfg: PretrainConfig, vocab_size: int):
    from crucible.model.gpt import GPTConfig

    overrides = dict(softcap=cfg.softcap, tie_embeddings=cfg.tie_embeddings, unet_skips=cfg.unet_skips,
                     value_embeds=cfg.value_embeds)
    if cfg.n_embd:
        overrides["n_embd"] = cfg.n_embd
    return GPTConfig.from_depth(cfg.depth, vocab_size, seq_len=cfg.seq_len, **overrides)


def flops_per_token(model) -> float:
    """6 N (matmul weights, forward + backward) + attention's 12 L C T, as nanochat counts."""
    c = model.config
    n = model.num_params(embeddings=False)
    return 6 * n + 12 * c.n_layer * c.n_embd * c.seq_len


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_FLOPS.items():
        if key in name:
            return value
    return None


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


def _autocast_dtype(cfg: PretrainConfig, device: torch.device):
    """bf16 autocast on GPU, and on CPUs with native bf16 matmuls (3x float32's speed there)."""
    from crucible.train.optim import cpu_has_bf16

    if cfg.dtype == "bfloat16" or (cfg.dtype == "auto" and (device.type == "cuda" or cpu_has_bf16())):
        return torch.bfloat16
    return None


class Logger:
    """Append-only JSONL log (flushed per line) plus a human line through tqdm."""

    def __init__(self, path: Path | None, bar):
        self.f = open(path, "a", encoding="utf-8") if path else None
        self.bar = bar

    def __call__(self, record: dict, line: str | None = None) -> None:
        if self.f:
            self.f.write(json.dumps(record) + "\n")
            self.f.flush()
        if line:
            (self.bar.write if self.bar is not None else print)(line)

    def close(self):
        if self.f:
            self.f.close()


def train(cfg: PretrainConfig, *, resume: bool = False, stop_after: int | None = None,
          progress: bool = True) -> dict:
    """Run (or resume) pretraining in cfg.out; returns the summary. `stop_after`: stop (with a
    checkpoint) after that many steps in total, as if preempted."""
    from tqdm import tqdm

    from crucible.data.shards import TokenStream
    from crucible.model.gpt import GPT
    from crucible.model.tokenizer import Tokenizer
    from crucible.train.average import WeightAverager
    from crucible.train.evaluate import evaluate_bpb
    from crucible.train.optim import build_optimizers, split_params
    from crucible.train.quantize import QATSwap

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
    mc = model_config(cfg, tokenizer.vocab_size)
    model = GPT(mc).to(info.device)
    ckpt = checkpoint.latest(out) if resume else None
    if resume and ckpt is None:
        raise FileNotFoundError(f"{out}: nothing to resume (no {checkpoint.LATEST} file)")
    if ckpt is not None:
        loaded = GPT.from_pretrained(ckpt, device=info.device)
        model.load_state_dict(loaded.state_dict())
        del loaded
    train_module = LossModule(model, cfg.loss)
    wrapped = dist.wrap(train_module, info, cfg.dist)   # FSDP2 swaps in sharded parameters: wrap first,
    optimizers = build_optimizers(model, cfg)           # then build the optimizers over what it left
    averager = WeightAverager(cfg.average, cfg.ema_decay, cfg.swa_every) if cfg.average != "none" else None
    state = {"step": 0, "position": 0, "elapsed": 0.0, "tokens": 0}
    if ckpt is not None:
        state = checkpoint.load(ckpt, optimizers=optimizers, rank=info.rank, map_location=info.device)
        if averager is not None and state.get("averager"):
            averager.load_state_dict(state["averager"])
        if master:
            print(f"resumed from {ckpt} at step {state['step']}", flush=True)
    use_compile = cfg.compile == "yes" or (cfg.compile == "auto" and info.device.type == "cuda")
    step_fn = torch.compile(wrapped) if use_compile else wrapped
    amp_dtype = _autocast_dtype(cfg, info.device)

    train_stream = TokenStream(cfg.data, "train")
    val_stream = TokenStream(cfg.data, "val")
    val_tokens = val_stream.read(0, min(val_stream.total, cfg.val_tokens or val_stream.total))
    token_bytes = tokenizer.token_bytes()
    qat = QATSwap([p for _, p in split_params(model)["matrix"]], cfg.qat_bits, cfg.clip_percentile) \
        if cfg.qat_bits else None

    B, T, A, W = cfg.batch_size, cfg.seq_len, cfg.grad_accum, info.world
    tokens_per_step = B * T * A * W
    budget_s = cfg.max_minutes * 60.0
    fpt, peak = flops_per_token(model), peak_flops(info.device)
    bar = tqdm(total=cfg.max_steps, initial=state["step"], desc="pretrain", unit="step",
               disable=not (progress and master), dynamic_ncols=True)
    log = Logger(out / "log.jsonl" if master else None, bar if progress and master else None)
    if master:
        log({"event": "start", "step": state["step"], "params": model.num_params(),
             "tokens_per_step": tokens_per_step, "world": W, "device": str(info.device)},
            f"{model.summary()}\n{tokens_per_step} tokens/step ({B}x{T} x {A} accum x {W} ranks), "
            f"optimizer {cfg.optimizer}, {'%g min budget' % cfg.max_minutes if budget_s else '%d steps' % cfg.max_steps}")

    def progress_of() -> float:
        if budget_s:
            return min(state["elapsed"] / budget_s, 1.0)
        return state["step"] / cfg.max_steps

    def done() -> bool:
        if state["step"] >= cfg.max_steps:
            return True
        return bool(budget_s) and state["elapsed"] >= budget_s

    def run_eval(tag: str) -> dict:
        with dist.unsharded(wrapped):
            r = evaluate_bpb(model, val_tokens, token_bytes, window=T, stride=cfg.eval_stride or T,
                             batch_size=max(1, B), device=info.device, autocast_dtype=amp_dtype,
                             rank=info.rank, world=W,
                             gather=(lambda v: dist.all_gather_lists(v, info)) if W > 1 else None)
        rec = {"event": "eval", "tag": tag, "step": state["step"], **r}
        if master:
            log(rec, f"step {state['step']:>6} | val bpb {r['bpb']:.4f} ± {r['bpb_ci95']:.4f} "
                     f"(95% CI) | loss {r['loss']:.4f} nats/token | {tag}")
        return rec

    def save_ckpt() -> Path:
        st = dict(state)
        if averager is not None:
            st["averager"] = averager.state_dict()
        sharded = cfg.dist == "fsdp" and W > 1
        if sharded:
            full = {k.removeprefix("model."): v for k, v in dist.full_state_dict(wrapped).items()}

            def save_model(d):
                cpu_model = GPT(mc)
                cpu_model.load_state_dict(full)
                cpu_model.save_pretrained(d, tokenizer)
        else:
            def save_model(d):
                model.save_pretrained(d, tokenizer)
        return checkpoint.save(out, state["step"], save_model=save_model, optimizers=optimizers, state=st,
                               rank=info.rank, world=W, sharded_optimizer=sharded,
                               barrier=lambda: dist.barrier(info), keep=cfg.keep_checkpoints)

    loss_sum = torch.zeros((), device=info.device)
    loss_count = 0
    window_s, window_tokens = 0.0, 0     # training time and tokens since the last log line
    while not done():
        t0 = time.perf_counter()
        p = progress_of()
        lr_mult = schedule.lr_multiplier(p + (0 if budget_s else 1.0 / cfg.max_steps), cfg.warmup,
                                         cfg.warmdown, cfg.final_lr_frac)
        schedule.apply(optimizers, lr_mult, schedule.muon_momentum(state["step"], cfg.muon_momentum,
                                                                   warmup_steps=cfg.momentum_warmup_steps))
        quantizing = qat is not None and p >= cfg.qat_start
        if quantizing:
            qat.quantize()
        for micro in range(A):
            x, y = train_stream.batch(state["position"] + info.rank * B * T, B, T)
            state["position"] += W * B * T
            x, y = x.to(info.device, non_blocking=True), y.to(info.device, non_blocking=True)
            with dist.no_sync(wrapped, micro == A - 1):
                with torch.autocast(device_type=info.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    loss = step_fn(x, y)
                (loss / A).backward()
            loss_sum += loss.detach()
            loss_count += 1
        if quantizing:
            qat.restore()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        for opt in optimizers:
            opt.step()
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        state["step"] += 1
        state["tokens"] += tokens_per_step
        if averager is not None and schedule.in_warmdown(progress_of(), cfg.warmdown):
            averager.update(model)
        if info.device.type == "cuda":
            torch.cuda.synchronize(info.device)
        dt = time.perf_counter() - t0
        if budget_s and W > 1:   # every rank must agree on when the budget runs out
            dt = max(dist.all_reduce_sum([dt], info)[0] / W, dt)
        state["elapsed"] += dt
        window_tokens += tokens_per_step
        window_s += dt
        bar.update(1)

        step = state["step"]
        if step % cfg.log_every == 0 or done():
            mean_loss = float(dist.all_reduce_sum([float(loss_sum) / max(loss_count, 1)], info)[0]) / W
            tok_s = window_tokens / max(window_s, 1e-9)
            mfu = tok_s * fpt / (peak * W) if peak else None
            rec = {"event": "train", "step": step, "loss": mean_loss, "lr_mult": lr_mult,
                   "tokens_per_s": tok_s, "mfu": mfu, "elapsed_s": state["elapsed"], "qat": quantizing}
            if master:
                bar.set_postfix(loss=f"{mean_loss:.3f}", tok_s=f"{tok_s:,.0f}")
                log(rec, f"step {step:>6} | loss {mean_loss:.4f} | lr x{lr_mult:.3f} | {tok_s:,.0f} tok/s"
                         + (f" | MFU {100 * mfu:.1f}%" if mfu is not None else "")
                         + (" | QAT" if quantizing else ""))
            loss_sum.zero_()
            loss_count, window_s, window_tokens = 0, 0.0, 0
        if cfg.eval_every and step % cfg.eval_every == 0 and not done():
            run_eval("periodic")
        if stop_after is not None and step >= stop_after and not done():
            save_ckpt()
            bar.close()
            log.close()
            return {"stopped_at": step, "out": str(out)}
        if cfg.ckpt_every and step % cfg.ckpt_every == 0 and not done():
            save_ckpt()
    bar.close()

    final = run_eval("final (raw weights)")
    averaged = None
    if averager is not None and averager.avg:
        raw = {n: p.detach().clone() for n, p in model.named_parameters()}
        averager.copy_to(model)
        averaged = run_eval(f"final ({cfg.average} average of {averager.count})")
        if averaged["bpb"] <= final["bpb"]:
            final = averaged
        else:   # keep the better weights
            with torch.no_grad():
                for n, p in model.named_parameters():
                    p.copy_(raw[n])
    ckpt = save_ckpt()
    summary = {"step": state["step"], "tokens": state["tokens"], "elapsed_s": state["elapsed"],
               "val_bpb": final["bpb"], "val_bpb_ci95": final["bpb_ci95"], "val_loss": final["loss"],
               "val_tokens_scored": final["tokens"], "averaged": averaged is not None and final is averaged,
               "checkpoint": str(ckpt), "params": model.num_params(), "optimizer": cfg.optimizer}
    if master:
        tmp = out / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
        os.replace(tmp, out / "summary.json")
        log({"event": "end", **summary},
            f"done: {state['step']} steps, {state['tokens']:,} tokens in {state['elapsed']:.0f}s; "
            f"val bpb {final['bpb']:.4f} ± {final['bpb_ci95']:.4f} (95% CI); checkpoint {ckpt}")
    log.close()
    return summary
