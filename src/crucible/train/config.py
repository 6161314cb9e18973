"""The pretraining configuration: one flat dataclass, filled from defaults < recipe TOML < flags.

A recipe is a TOML file whose keys are the field names below; tables ([model], [optim], ...) are
only for readability and are flattened (a key must be unique across them). Unknown keys and wrong
types are errors that name the file and line. Importing this module does not import torch, so the
CLI can build its flags from the fields cheaply.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class PretrainConfig:
    # data
    data: str = "data/default"          # prepared shards (prepared here on first use if missing)
    sources: list = field(default_factory=list)  # for auto-prepare: [] = stdlib + site-packages
    max_mb: float = 64.0                # auto-prepare: corpus size cap in MB of text
    vocab_size: int = 8192              # auto-prepare: tokenizer size
    val_fraction: float = 0.01          # auto-prepare: share of documents (by content hash) held out
    # model (GPTConfig.from_depth + overrides)
    depth: int = 4
    n_embd: int = 0                     # 0: from_depth's width
    seq_len: int = 256
    softcap: float = 15.0
    tie_embeddings: bool = False
    unet_skips: bool = False
    value_embeds: bool = False
    # batch and length
    batch_size: int = 16                # sequences per micro-step per rank
    grad_accum: int = 1
    max_steps: int = 1000
    max_minutes: float = 0.0            # > 0: a wall-clock budget; schedules follow time, not steps
    # optimizer
    optimizer: str = "normuon"          # muon | normuon | adamw
    lr: float = 3e-3                    # adamw
    matrix_lr: float = 0.02             # muon
    embedding_lr: float = 0.3           # adam, token embeddings
    head_lr: float = 0.004              # adam, lm_head
    scalar_lr: float = 0.02             # adam, gains and gates
    adam_beta1: float = 0.8
    adam_beta2: float = 0.95
    weight_decay: float = 0.0
    muon_momentum: float = 0.95
    momentum_warmup_steps: int = 300
    grad_clip: float = 0.0              # 0: off
    # schedule (fractions of the run)
    warmup: float = 0.0
    warmdown: float = 0.4
    final_lr_frac: float = 0.0
    # weight averaging over the warm-down
    average: str = "none"               # none | ema | swa
    ema_decay: float = 0.95
    swa_every: int = 5
    # quantisation-aware training late in the run
    qat_bits: int = 0                   # 0: off; 6 or 8
    qat_start: float = 0.85             # progress at which fake-quant starts
    clip_percentile: float = 0.9999
    # loss
    loss: str = "chunked"               # chunked | naive
    # evaluation and logging
    eval_every: int = 100               # steps; 0: only at the end
    val_tokens: int = 131072            # validation tokens scored each time (0: the whole split)
    eval_stride: int = 0                # 0: non-overlapping windows (stride = seq_len)
    log_every: int = 10
    # checkpoints
    out: str = "runs/pretrain"
    ckpt_every: int = 0                 # steps; 0: only at the end
    keep_checkpoints: int = 2
    # machine
    seed: int = 1337
    device: str = "auto"                # auto | cpu | cuda
    dtype: str = "auto"                 # auto (bf16 autocast on GPU / bf16-capable CPU) | float32 | bfloat16
    compile: str = "auto"               # auto (on GPU) | yes | no
    dist: str = "ddp"                   # ddp | fsdp (under torchrun)
    threads: int = 0                    # CPU threads for torch (0: torch's default)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(PretrainConfig)}


class ConfigError(ValueError):
    pass


def _line_of(text: str, key: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return i
    return 0


def coerce(name: str, value, where: str = "", fields: dict | None = None):
    """Check a value against the field's type (ints may stand for floats)."""
    f = (fields or FIELDS)[name]
    default = f.default if f.default is not dataclasses.MISSING else []
    kind = type(default)
    ok = (isinstance(value, kind) and not (kind is int and isinstance(value, bool))) or \
         (kind is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise ConfigError(f"{where}{name} must be {kind.__name__}, got {value!r}")
    return float(value) if kind is float else value


def load_recipe(path: str | Path, fields: dict | None = None) -> dict:
    """The recipe's keys, checked against `fields` (default: PretrainConfig's)."""
    fields = fields or FIELDS
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such recipe file")
    text = path.read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    flat: dict = {}

    def walk(d: dict):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v)
                continue
            where = f"{path}:{_line_of(text, k)}: "
            if k not in fields:
                raise ConfigError(f"{where}unknown key {k!r}")
            if k in flat:
                raise ConfigError(f"{where}key {k!r} given twice")
            flat[k] = coerce(k, v, where, fields)

    walk(raw)
    return flat


def build_config(recipe: str | None = None, overrides: dict | None = None) -> PretrainConfig:
    values = load_recipe(recipe) if recipe else {}
    for k, v in (overrides or {}).items():
        values[k] = coerce(k, v, "--")
    cfg = PretrainConfig(**values)
    validate(cfg)
    return cfg


def validate(cfg: PretrainConfig) -> None:
    choices = {"optimizer": ("muon", "normuon", "adamw"), "average": ("none", "ema", "swa"),
               "loss": ("chunked", "naive"), "device": ("auto", "cpu", "cuda"),
               "dtype": ("auto", "float32", "bfloat16"), "compile": ("auto", "yes", "no"),
               "dist": ("ddp", "fsdp")}
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(cfg, name)!r}")
    if cfg.qat_bits not in (0, 6, 8):
        raise ConfigError(f"qat_bits must be 0, 6 or 8, got {cfg.qat_bits}")
    for name in ("depth", "seq_len", "batch_size", "grad_accum", "max_steps"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if not (0 <= cfg.warmup <= 1 and 0 <= cfg.warmdown <= 1 and cfg.warmup + cfg.warmdown <= 1):
        raise ConfigError("warmup and warmdown are fractions of the run and must sum to at most 1")
