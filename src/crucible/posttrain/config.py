"""Post-training settings: a flat config per method, filled from defaults < recipe TOML < flags.

One table of keys (`PostTrainConfig`: every key with its default and meaning) and three configs cut
from it, `SFTConfig`, `DPOConfig`, `GRPOConfig`, each with the common keys plus its own (`KEYS`): a
recipe key outside a method's set is an error naming file and line, and each command has a flag for
exactly its keys (crucible.train.config's loader, flags and resume policy serve any config class).
The training loop's remaining knobs (QAT, averaging, Muon, compile) are fixed here as class
constants: post-training uses AdamW, no averaging, no QAT; across ranks DDP, or FSDP2 for SFT's full
fine-tuning (`dist`, pretraining's knob; docs/posttrain.md says why only there). `batch_size` is the rows of one step on all ranks together: under
torchrun (WORLD_SIZE) each rank trains batch_size / ranks of them, in micro-batches of
`micro_batch` rows, so a run's data and loss do not depend on how many ranks share it. Importing
this module does not import torch.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field


@dataclass
class PostTrainConfig:
    model: str = ""                     # native:DIR or hf:DIR
    out: str = ""
    data: list = field(default_factory=list)   # FILE or FILE:WEIGHT (sft, dpo)
    lora_rank: int = 0                  # 0: full fine-tuning
    # optimisation
    lr: float = 1e-4
    weight_decay: float = 0.0           # on block matrices only
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    grad_clip: float = 1.0
    warmup: float = 0.0                 # fractions of the run
    warmdown: float = 0.0
    final_lr_frac: float = 0.0
    batch_size: int = 8                 # rows (sequences, pairs or samples) per optimizer step, all ranks
    micro_batch: int = 0                # rows per forward (0: batch_size / ranks)
    seq_len: int = 1024
    max_steps: int = 0                  # 0: from epochs
    epochs: float = 1.0
    # data
    val_fraction: float = 0.05
    pack: bool = True                   # sft: best-fit-decreasing packing with document masking
    rope_theta: float = 0.0             # native: RoPE base for a longer --seq-len (0: the model's)
    new_tokens: list = field(default_factory=list)   # hf: special tokens to add
    # dpo
    beta: float = 0.1
    loss: str = "sigmoid"               # sigmoid | ipo
    nll_alpha: float = 0.0              # weight of the NLL term on chosen answers
    # grpo
    suite: str = ""                     # humaneval | puzzles | tasks:FILE.jsonl
    language: str = "python"
    group_size: int = 8
    tasks_per_step: int = 8
    reward: list = field(default_factory=list)   # module.py:function[:weight]
    kl_beta: float = 0.0
    clip_low: float = 0.2
    clip_high: float = 0.28
    scale_advantages: bool = False
    temperature: float = 1.0
    max_new_tokens: int = 256
    tools: bool = False                 # native: let the engine run <|python_start|> code in the sandbox
    # logging, checkpoints, machine
    log_every: int = 1
    eval_every: int = 0                 # 0: only at the end
    ckpt_every: int = 0                 # 0: only at the end
    keep_checkpoints: int = 2
    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"              # float32 | bfloat16 (autocast)
    dist: str = "ddp"                   # sft under torchrun: ddp | fsdp (FSDP2, full fine-tuning only)


FIELDS = {f.name: f for f in dataclasses.fields(PostTrainConfig)}
COMMON = ("model", "out", "lora_rank", "lr", "weight_decay", "adam_beta1", "adam_beta2", "grad_clip",
          "warmup", "warmdown", "final_lr_frac", "batch_size", "micro_batch", "seq_len", "max_steps", "log_every",
          "eval_every", "ckpt_every", "keep_checkpoints", "seed", "device", "dtype")
KEYS = {
    "sft": COMMON + ("data", "epochs", "val_fraction", "pack", "rope_theta", "new_tokens", "dist"),
    "dpo": COMMON + ("data", "epochs", "val_fraction", "beta", "loss", "nll_alpha"),
    "grpo": COMMON + ("suite", "language", "group_size", "tasks_per_step", "reward", "kl_beta", "clip_low",
                      "clip_high", "scale_advantages", "temperature", "max_new_tokens", "tools"),
}
# the shared loop's other knobs, fixed for post-training (crucible.train.loop.LOOP_FIELDS) where a
# method has no key of that name
LOOP_CONSTANTS = dict(max_minutes=0.0, muon_momentum=0.95, momentum_warmup_steps=0, average="none", ema_decay=0.95,
                      swa_every=5, qat_bits=0, qat_start=1.0, clip_percentile=0.9999, compile="no", dist="ddp",
                      optimizer="adamw")
CHOICES = {"loss": ("sigmoid", "ipo"), "device": ("auto", "cpu", "cuda"), "dtype": ("float32", "bfloat16"),
           "dist": ("ddp", "fsdp")}


def validate(cfg) -> None:
    from crucible.train.config import ConfigError

    for name, allowed in CHOICES.items():
        if hasattr(cfg, name) and getattr(cfg, name) not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(cfg, name)!r}")
    if not cfg.model:
        raise ConfigError("--model is required (native:DIR or hf:DIR)")
    if not cfg.out:
        raise ConfigError("--out is required")
    if hasattr(cfg, "data") and not cfg.data:
        raise ConfigError("--data is required")
    if hasattr(cfg, "suite") and not cfg.suite:
        raise ConfigError("--suite is required (humaneval, puzzles or tasks:FILE.jsonl)")
    for name in ("batch_size", "seq_len", "group_size", "tasks_per_step", "max_new_tokens"):
        if getattr(cfg, name, 1) < 1:
            raise ConfigError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.micro_batch < 0 or cfg.max_steps < 0 or cfg.lora_rank < 0:
        raise ConfigError("micro_batch, max_steps and lora_rank must be >= 0")
    if cfg.batch_size % cfg.world:
        raise ConfigError(f"batch_size {cfg.batch_size} must split evenly over {cfg.world} ranks")
    if cfg.batch_size % (cfg.world * cfg.rows_per_forward):
        raise ConfigError(f"batch_size {cfg.batch_size} must be a multiple of {cfg.world} rank(s) x "
                          f"micro_batch {cfg.micro_batch}")
    if cfg.dist == "fsdp" and cfg.lora_rank:
        raise ConfigError("dist fsdp is for full fine-tuning: LoRA runs use dist ddp (the adapters are small)")
    if getattr(cfg, "group_size", 2) < 2:
        raise ConfigError("group_size must be >= 2 (advantages compare samples of one task)")
    if not cfg.max_steps and not getattr(cfg, "epochs", 1.0) > 0:
        raise ConfigError("give --max-steps or --epochs > 0")
    if getattr(cfg, "beta", 1.0) <= 0 or getattr(cfg, "temperature", 1.0) <= 0:
        raise ConfigError("beta and temperature must be > 0")
    if not (0 <= cfg.warmup <= 1 and 0 <= cfg.warmdown <= 1 and cfg.warmup + cfg.warmdown <= 1):
        raise ConfigError("warmup and warmdown are fractions of the run and must sum to at most 1")


def world_size() -> int:
    """The number of ranks, from torchrun's WORLD_SIZE (as crucible.train.dist.init reads it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _config_class(name: str, method: str):
    fields = [(k, FIELDS[k].type,
               dataclasses.field(default=FIELDS[k].default, default_factory=FIELDS[k].default_factory))
              for k in KEYS[method]]
    constants = {k: v for k, v in LOOP_CONSTANTS.items() if k not in KEYS[method]}
    namespace = {**constants, "method": method, "validate": validate,
                 "to_dict": lambda self: dataclasses.asdict(self),
                 "world": property(lambda self: world_size()),
                 # batch_size is the step's rows on all ranks; each rank trains an equal share of them
                 "rows_per_forward": property(lambda self: self.micro_batch or max(1, self.batch_size // self.world)),
                 "grad_accum": property(lambda self: self.batch_size // (self.world * self.rows_per_forward)),
                 "__doc__": f"`crucible {method}` settings (keys: posttrain.config.KEYS[{method!r}])."}
    return dataclasses.make_dataclass(name, fields, namespace=namespace)


SFTConfig = _config_class("SFTConfig", "sft")
DPOConfig = _config_class("DPOConfig", "dpo")
GRPOConfig = _config_class("GRPOConfig", "grpo")
CONFIGS = {"sft": SFTConfig, "dpo": DPOConfig, "grpo": GRPOConfig}
