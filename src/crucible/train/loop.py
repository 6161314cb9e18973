"""The training loop every method shares: setup, one step, evaluate, save, resume, with the state explicit.

Pretraining, SFT, DPO and GRPO differ only in their batches and their loss; all of them need the
same step: learning-rate and Muon-momentum schedules, optional fake-quantisation (QAT), gradient
accumulation with gradient sync on the last micro-batch only, clipping, every optimizer, the
EMA/SWA average, wall-clock accounting, checkpoints that resume bit-exactly. So a method brings:

- a model (built, or loaded from the checkpoint being resumed: weights are loaded before wrapping,
  because FSDP2 swaps the parameters for sharded ones);
- `loss_fn(model, data) -> loss`: the MEAN loss over the trained tokens of one micro-batch (what a
  cross-entropy returns). It runs inside `TrainModule`, so DDP / FSDP2 / torch.compile see the
  whole forward; keep a frozen reference model in its closure, not as a submodule;
- a batch source: an iterator of `MicroBatch(data, tokens, position)`. `tokens` (known before the
  forward) is how many tokens the micro-batch trains; `position` is the source's position after it,
  saved in checkpoints so the source can restart there;
- `write_model(dir, weights)`: saves the model (`weights` is the gathered state dict under FSDP2,
  else None: save the model as it is).

The step's loss is the mean over every token trained in the step, on every rank: micro-batch i
(n_i tokens, on one of W ranks; N tokens in the step in all) is back-propagated as
loss_i / (N / (n_i W)), and DDP/FSDP average the W ranks. One micro-batch of 8 sequences and four of
2 then give the same gradient; with equal micro-batches the divisor is exactly grad_accum, as it
always was. `fit` groups `cfg.grad_accum` micro-batches per step and runs to the end (or the batch
source's end), logging, evaluating and checkpointing on the way.

Compilation (`cfg.compile`: on for GPUs by default): on one process the step's forward (model +
loss) is compiled with `fullgraph=True`, so anything dynamo cannot trace is an error, not a silent
graph break (tests trace the whole tiny-model step). A loss whose last part is a kernel dynamo must
not trace (Liger's fused linear CE) is a `SplitLoss`: its `trunk` (the model) is compiled, and its
`head` runs eagerly after it. Under DDP / FSDP2 the wrapped module is compiled as before (dynamo
splits the graph at their hooks). With compilation on, Muon's Newton–Schulz is compiled too.

Host syncs: none in `train_step` (on CUDA the loop can run ahead of the GPU); `fit` synchronises
only at log steps, where it reads the loss, tokens/s, MFU and peak memory.

`cfg` is any config with the fields in LOOP_FIELDS (PretrainConfig has them all). Not covered:
per-parameter-group schedules, skipping steps whose gradient is not finite, CUDA graphs for the step.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from crucible.train import checkpoint, dist, schedule

LOOP_FIELDS = ("max_steps", "max_minutes", "grad_accum", "warmup", "warmdown", "final_lr_frac", "muon_momentum",
               "momentum_warmup_steps", "grad_clip", "average", "ema_decay", "swa_every", "qat_bits", "qat_start",
               "clip_percentile", "eval_every", "log_every", "ckpt_every", "keep_checkpoints", "out", "dtype",
               "compile", "dist")
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12,
              "4090": 165e12, "B200": 2250e12}
# torch.compile's backend. Tests (and bench/gpu_check.sh --cpu) use "aot_eager": the same fullgraph
# tracing of forward and backward, without inductor's code generation (minutes on a small CPU).
COMPILE_BACKEND = os.environ.get("CRUCIBLE_COMPILE_BACKEND", "inductor")


@dataclass
class MicroBatch:
    data: Any            # what loss_fn takes, on the device
    tokens: int          # tokens it trains (its loss is their mean)
    position: int        # the batch source's position after it


@dataclass
class SplitLoss:
    """A loss_fn in two parts: `trunk(model, data) -> tuple` (the model's forward: what compiles) and
    `head(model, *trunk_output) -> loss`. `eager_head(model)`: whether the head runs a kernel that
    dynamo must not trace (then only the trunk is compiled). Called whole, an ordinary loss_fn."""
    trunk: Callable
    head: Callable
    eager_head: Callable[[nn.Module], bool] = lambda model: False

    def __call__(self, model: nn.Module, data) -> torch.Tensor:
        return self.head(model, *self.trunk(model, data))


class TrainModule(nn.Module):
    """The model plus its loss, as one module, so DDP/FSDP/compile see the whole step's forward.
    The model is the attribute `model` (state-dict keys `model.*`)."""

    def __init__(self, model: nn.Module, loss_fn: Callable):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, data) -> torch.Tensor:
        return self.loss_fn(self.model, data)


@dataclass
class TrainState:
    cfg: Any
    info: dist.DistInfo
    model: nn.Module                 # the bare model: what optimizers step and evaluation scores
    module: nn.Module                # TrainModule as DDP/FSDP wrapped it
    forward: Callable                # module, or its torch.compile
    optimizers: list
    write_model: Callable
    averager: Any = None             # WeightAverager over the warm-down, or None
    qat: Any = None                  # QATSwap, or None
    autocast_dtype: torch.dtype | None = None
    step: int = 0
    position: int = 0                # the batch source's position
    elapsed: float = 0.0             # seconds trained
    tokens: int = 0                  # tokens trained, all ranks
    loss_sum: torch.Tensor | None = None   # sum of loss x tokens since the last log line (this rank)
    loss_tokens: int = 0


@dataclass
class StepReport:
    lr_mult: float
    quantizing: bool
    seconds: float
    tokens: int                      # trained in the step, all ranks


def autocast_dtype(cfg, device: torch.device):
    """bf16 autocast on GPU, and on CPUs with native bf16 matmuls (3x float32's speed there)."""
    from crucible.train.optim import cpu_has_bf16

    if cfg.dtype == "bfloat16" or (cfg.dtype == "auto" and (device.type == "cuda" or cpu_has_bf16())):
        return torch.bfloat16
    return None


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_FLOPS.items():
        if key in name:
            return value
    return None


def setup(cfg, model: nn.Module, loss_fn: Callable, info: dist.DistInfo, *, write_model: Callable,
          resume_from: Path | None = None) -> TrainState:
    """Wrap `model` (already on info.device, already holding the weights to train) for DDP/FSDP,
    build optimizers, the average and QAT; with `resume_from`, restore the trainer state of that
    checkpoint (optimizers, RNG, step, data position, average)."""
    from crucible.train.average import WeightAverager
    from crucible.train.optim import build_optimizers, split_params
    from crucible.train.quantize import QATSwap

    missing = [f for f in LOOP_FIELDS if not hasattr(cfg, f)]
    if missing:
        raise TypeError(f"{type(cfg).__name__} lacks the training-loop fields {', '.join(missing)}")
    train_module = TrainModule(model, loss_fn)
    module = dist.wrap(train_module, info, cfg.dist)    # FSDP2 swaps in sharded parameters:
    optimizers = build_optimizers(model, cfg)            # wrap first, then the optimizers
    averager = WeightAverager(cfg.average, cfg.ema_decay, cfg.swa_every) if cfg.average != "none" else None
    state = TrainState(cfg=cfg, info=info, model=model, module=module, forward=module, optimizers=optimizers,
                       write_model=write_model, averager=averager,
                       loss_sum=torch.zeros((), device=info.device))
    if resume_from is not None:
        restore(state, resume_from)
        if info.master:
            print(f"resumed from {resume_from} at step {state.step}", flush=True)
    if cfg.compile == "yes" or (cfg.compile == "auto" and info.device.type == "cuda"):
        state.forward = compile_forward(train_module, module, info)
        for opt in optimizers:
            if hasattr(opt, "orthogonalize"):      # Muon
                opt.orthogonalize = torch.compile(opt.orthogonalize, fullgraph=True, dynamic=False,
                                                  backend=COMPILE_BACKEND)
    state.autocast_dtype = autocast_dtype(cfg, info.device)
    if cfg.qat_bits:
        state.qat = QATSwap([p for _, p in split_params(model)["matrix"]], cfg.qat_bits, cfg.clip_percentile)
    return state


def compile_forward(train_module: TrainModule, module: nn.Module, info: dist.DistInfo) -> Callable:
    """The step's forward, compiled (see the module doc): the whole of it with fullgraph=True on one
    process; only a SplitLoss's trunk when its head must stay eager; DDP / FSDP2 as dynamo splits them."""
    loss_fn = train_module.loss_fn
    if isinstance(loss_fn, SplitLoss) and loss_fn.eager_head(train_module.model):
        trunk = torch.compile(loss_fn.trunk, fullgraph=True, backend=COMPILE_BACKEND)
        train_module.loss_fn = dataclasses.replace(loss_fn, trunk=trunk)
        return module
    if info.world == 1:
        return torch.compile(module, fullgraph=True, backend=COMPILE_BACKEND)
    return torch.compile(module, backend=COMPILE_BACKEND)


def progress(state: TrainState) -> float:
    """Fraction of the run done: steps, or seconds trained under a wall-clock budget."""
    budget_s = state.cfg.max_minutes * 60.0
    if budget_s:
        return min(state.elapsed / budget_s, 1.0)
    return state.step / state.cfg.max_steps


def finished(state: TrainState) -> bool:
    if state.step >= state.cfg.max_steps:
        return True
    budget_s = state.cfg.max_minutes * 60.0
    return bool(budget_s) and state.elapsed >= budget_s


def train_step(state: TrainState, micro_batches: list[MicroBatch]) -> StepReport:
    """One optimizer step over `micro_batches` (this rank's share of the step)."""
    cfg, info = state.cfg, state.info
    t0 = time.perf_counter()
    p = progress(state)
    budget_s = cfg.max_minutes * 60.0
    lr_mult = schedule.lr_multiplier(p + (0 if budget_s else 1.0 / cfg.max_steps), cfg.warmup, cfg.warmdown,
                                     cfg.final_lr_frac)
    schedule.apply(state.optimizers, lr_mult, schedule.muon_momentum(state.step, cfg.muon_momentum,
                                                                     warmup_steps=cfg.momentum_warmup_steps))
    quantizing = state.qat is not None and p >= cfg.qat_start
    if quantizing:
        state.qat.quantize()
    local_tokens = sum(mb.tokens for mb in micro_batches)
    total = int(dist.all_reduce_sum([local_tokens], info)[0])
    if total == 0:
        raise ValueError(f"step {state.step + 1}: its micro-batches train no tokens")
    last = len(micro_batches) - 1
    for i, mb in enumerate(micro_batches):
        with dist.no_sync(state.module, i == last):
            with torch.autocast(device_type=info.device.type, dtype=state.autocast_dtype,
                                enabled=state.autocast_dtype is not None):
                loss = state.forward(mb.data)
            # the mean over the step's tokens: equal micro-batches divide by exactly grad_accum
            (loss / (total / (mb.tokens * info.world)) if mb.tokens else loss * 0.0).backward()
        state.loss_sum += loss.detach() * mb.tokens
    if quantizing:
        state.qat.restore()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(state.model.parameters(), cfg.grad_clip)
    for opt in state.optimizers:
        opt.step()
        if any(g.get("fused") for g in opt.param_groups):
            # fused kernels leave version counters alone; caches keyed on them (the GPT's decode
            # matrices, which GRPO's sampler reads) must see the update
            torch.autograd.graph.increment_version([p for g in opt.param_groups for p in g["params"]])
    for opt in state.optimizers:
        opt.zero_grad(set_to_none=True)
    state.step += 1
    state.tokens += total
    state.position = micro_batches[-1].position
    state.loss_tokens += local_tokens
    if state.averager is not None and schedule.in_warmdown(progress(state), cfg.warmdown):
        state.averager.update(state.model)
    dt = time.perf_counter() - t0    # on CUDA: time to queue the step (fit syncs at log steps)
    if budget_s and info.world > 1:   # every rank must agree on when the budget runs out
        dt = max(dist.all_reduce_sum([dt], info)[0] / info.world, dt)
    state.elapsed += dt
    return StepReport(lr_mult=lr_mult, quantizing=quantizing, seconds=dt, tokens=total)


def synchronize(device: torch.device) -> float:
    """Wait for the device's queued work; the seconds waited (0 on CPU, which never runs ahead)."""
    if device.type != "cuda":
        return 0.0
    t0 = time.perf_counter()
    torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: the CUDA allocator's on a GPU, else the process's peak resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024     # Linux: KiB


def take_train_loss(state: TrainState) -> float:
    """The mean training loss per token since the last call, over all ranks (then reset)."""
    loss_sum, tokens = dist.all_reduce_sum([float(state.loss_sum), state.loss_tokens], state.info)
    state.loss_sum.zero_()
    state.loss_tokens = 0
    return loss_sum / max(tokens, 1)


@dataclass
class Evaluation:
    """How a method scores its model: `score(model) -> dict` (no grad; the model unsharded),
    `metric`: the key of that dict where lower is better, `describe(result) -> str` for the log."""
    score: Callable[[nn.Module], dict]
    metric: str
    describe: Callable[[dict], str]


def evaluate(state: TrainState, evaluation: Evaluation, tag: str, log) -> dict:
    with dist.unsharded(state.module):
        result = evaluation.score(state.model)
    record = {"event": "eval", "tag": tag, "step": state.step, **result}
    if state.info.master:
        log(record, f"step {state.step:>6} | {evaluation.describe(result)} | {tag}")
    return record


def gathered_weights(state: TrainState) -> dict | None:
    """The model's full state dict on CPU when FSDP2 shards it (every rank must call this), else None
    (the model holds its weights)."""
    if not (state.cfg.dist == "fsdp" and state.info.world > 1):
        return None
    return {k.removeprefix("model."): v for k, v in dist.full_state_dict(state.module).items()}


def save(state: TrainState, run_dir: str | Path) -> Path:
    """Checkpoint RUN/step_N (every rank calls it): weights through write_model, trainer state."""
    counters = {"step": state.step, "position": state.position, "elapsed": state.elapsed, "tokens": state.tokens}
    if state.averager is not None:
        counters["averager"] = state.averager.state_dict()
    sharded = state.cfg.dist == "fsdp" and state.info.world > 1
    weights = gathered_weights(state)
    return checkpoint.save(run_dir, state.step, save_model=lambda d: state.write_model(d, weights),
                           optimizers=state.optimizers, state=counters, rank=state.info.rank,
                           world=state.info.world, sharded_optimizer=sharded,
                           barrier=lambda: dist.barrier(state.info), keep=state.cfg.keep_checkpoints)


def restore(state: TrainState, path: str | Path) -> None:
    """Optimizer states, RNG, counters and the average from checkpoint `path` (not the weights)."""
    counters = checkpoint.load(path, optimizers=state.optimizers, rank=state.info.rank,
                               map_location=state.info.device)
    if state.averager is not None and counters.get("averager"):
        state.averager.load_state_dict(counters["averager"])
    state.step, state.position = counters["step"], counters["position"]
    state.elapsed, state.tokens = counters["elapsed"], counters["tokens"]


class Logger:
    """Append-only JSONL log (flushed per line) plus a human line through the tqdm bar.
    `enabled=False` (ranks other than 0) writes and prints nothing."""

    def __init__(self, path: Path | None, bar, *, enabled: bool = True):
        self.f = open(path, "a", encoding="utf-8") if path and enabled else None
        self.bar = bar
        self.enabled = enabled

    def __call__(self, record: dict, line: str | None = None) -> None:
        if self.f:
            self.f.write(json.dumps(record) + "\n")
            self.f.flush()
        if line and self.enabled:
            (self.bar.write if self.bar is not None else print)(line)

    def close(self):
        if self.f:
            self.f.close()


@dataclass
class FitResult:
    stopped_at: int | None = None    # set when stop_after cut the run short (a checkpoint was saved)
    final: dict = field(default_factory=dict)
    averaged: bool = False           # the average scored better and replaced the raw weights
    checkpoint: Path | None = None


def fit(state: TrainState, batches: Iterator[MicroBatch], evaluation: Evaluation, *, log: Logger, bar,
        stop_after: int | None = None, flops_per_token: float | None = None) -> FitResult:
    """Train until `finished` (or the batches run out): log every log_every steps, evaluate every
    eval_every, checkpoint every ckpt_every; `stop_after`: save and return after that many steps, as
    if preempted. At the end the average (if any) replaces the raw weights when it scores better."""
    cfg, info = state.cfg, state.info
    run_dir = Path(cfg.out)
    peak = peak_flops(info.device)
    window_s, window_tokens = 0.0, 0     # training time and tokens since the last log line
    first = True
    while not finished(state):
        micro_batches = list(itertools.islice(batches, cfg.grad_accum))
        if not micro_batches:
            break
        report = train_step(state, micro_batches)
        window_tokens += report.tokens
        window_s += report.seconds
        bar.update(1)
        step = state.step
        if first:      # this process's first step: it includes torch.compile's tracing and code generation
            first = False
            waited = synchronize(info.device)
            state.elapsed += waited
            window_s += waited
            first_s = report.seconds + waited
            if info.master:
                compiled = state.forward is not state.module
                log({"event": "first_step", "step": step, "seconds": first_s, "compiled": compiled},
                    f"step {step:>6} | first step {first_s:.1f}s" + (" (torch.compile included)" if compiled else ""))
        if step % cfg.log_every == 0 or finished(state):
            waited = synchronize(info.device)   # the one host sync: the window's steps are done
            state.elapsed += waited
            window_s += waited
            mean_loss = take_train_loss(state)
            tok_s = window_tokens / max(window_s, 1e-9)
            mfu = tok_s * flops_per_token / (peak * info.world) if peak and flops_per_token else None
            peak_mb = peak_memory_mb(info.device)
            record = {"event": "train", "step": step, "loss": mean_loss, "lr_mult": report.lr_mult,
                      "tokens_per_s": tok_s, "mfu": mfu, "peak_mem_mb": peak_mb, "elapsed_s": state.elapsed,
                      "qat": report.quantizing}
            if info.master:
                bar.set_postfix(loss=f"{mean_loss:.3f}", tok_s=f"{tok_s:,.0f}")
                log(record, f"step {step:>6} | loss {mean_loss:.4f} | lr x{report.lr_mult:.3f} | {tok_s:,.0f} tok/s"
                            + (f" | MFU {100 * mfu:.1f}%" if mfu is not None else "")
                            + f" | peak mem {peak_mb / 1024:.2f} GiB"
                            + (" | QAT" if report.quantizing else ""))
            window_s, window_tokens = 0.0, 0
        if cfg.eval_every and step % cfg.eval_every == 0 and not finished(state):
            evaluate(state, evaluation, "periodic", log)
        if stop_after is not None and step >= stop_after and not finished(state):
            save(state, run_dir)
            bar.close()
            return FitResult(stopped_at=step)
        if cfg.ckpt_every and step % cfg.ckpt_every == 0 and not finished(state):
            save(state, run_dir)
    bar.close()
    return finish(state, evaluation, log)


def finish(state: TrainState, evaluation: Evaluation, log: Logger) -> FitResult:
    """Final evaluation; the average replaces the raw weights if it scores better; final checkpoint."""
    final = evaluate(state, evaluation, "final (raw weights)", log)
    averaged = None
    averager, model = state.averager, state.model
    if averager is not None and averager.avg:
        raw = {n: p.detach().clone() for n, p in model.named_parameters()}
        averager.copy_to(model)
        averaged = evaluate(state, evaluation, f"final ({state.cfg.average} average of {averager.count})", log)
        if averaged[evaluation.metric] <= final[evaluation.metric]:
            final = averaged
        else:   # keep the better weights
            with torch.no_grad():
                for n, p in model.named_parameters():
                    p.copy_(raw[n])
    path = save(state, state.cfg.out)
    return FitResult(final=final, averaged=averaged is not None and final is averaged, checkpoint=path)
