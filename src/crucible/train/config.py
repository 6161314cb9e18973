"""The pretraining configuration: one flat dataclass, filled from defaults < recipe TOML < flags.

A recipe is a TOML file whose keys are the field names below; tables ([model], [optim], ...) are
only for readability and are flattened (a key must be unique across them). Unknown keys and wrong
types are errors that name the file and line. Recipes ship inside the package (`crucible/recipes/`,
package data), so `--config pretrain_tiny` works from an installed wheel as from a checkout; any
other path works too. `load_recipe` / `build_config` serve any flat config dataclass (post-training
brings its own), and `run_config` is the resume policy every training command shares.

Importing this module does not import torch, so the CLI can build its flags from the fields cheaply.
Errors are `ConfigError`s; commands turn them into usage errors.
"""

from __future__ import annotations

import dataclasses
import json
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
    head_dim: int = 0                   # 0: 128-wide heads (one head below 128); tiny models want 32
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

    def validate(self) -> None:
        choices = {"optimizer": ("muon", "normuon", "adamw"), "average": ("none", "ema", "swa"),
                   "loss": ("chunked", "naive"), "device": ("auto", "cpu", "cuda"),
                   "dtype": ("auto", "float32", "bfloat16"), "compile": ("auto", "yes", "no"),
                   "dist": ("ddp", "fsdp")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.qat_bits not in (0, 6, 8):
            raise ConfigError(f"qat_bits must be 0, 6 or 8, got {self.qat_bits}")
        for name in ("depth", "seq_len", "batch_size", "grad_accum", "max_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (0 <= self.warmup <= 1 and 0 <= self.warmdown <= 1 and self.warmup + self.warmdown <= 1):
            raise ConfigError("warmup and warmdown are fractions of the run and must sum to at most 1")


FIELDS = {f.name: f for f in dataclasses.fields(PretrainConfig)}
RECIPES = Path(__file__).resolve().parents[1] / "recipes"   # shipped as package data
# what --resume may change: how often to log / evaluate / save, and how the machine runs it
RESUME_MAY_CHANGE = {"eval_every", "log_every", "ckpt_every", "keep_checkpoints", "threads", "compile"}


class ConfigError(ValueError):
    pass


def _line_of(text: str, key: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return i
    return 0


def coerce(name: str, value, where: str = "", config_class=PretrainConfig):
    """Check a value against the field's type (ints may stand for floats)."""
    f = {f.name: f for f in dataclasses.fields(config_class)}[name]
    kind = list if f.default is dataclasses.MISSING else type(f.default)
    ok = (isinstance(value, kind) and not (kind is int and isinstance(value, bool))) or \
         (kind is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise ConfigError(f"{where}{name} must be {kind.__name__}, got {value!r}")
    return float(value) if kind is float else value


def recipe_file(name: str | Path) -> Path:
    """A recipe path, or the bare name of a shipped recipe ("pretrain_tiny", "golf.toml")."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = RECIPES / path.with_suffix(".toml").name
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in RECIPES.glob("*.toml")))
    raise ConfigError(f"{path}: no such recipe file (shipped recipes: {names})")


def load_recipe(path: str | Path, config_class=PretrainConfig) -> dict:
    """The recipe's values, checked against `config_class`'s fields (any flat dataclass whose
    fields all have defaults); errors name the file and line."""
    path = recipe_file(path)
    fields = {f.name for f in dataclasses.fields(config_class)}
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
            flat[k] = coerce(k, v, where, config_class)

    walk(raw)
    return flat


def build_config(recipe: str | Path | None = None, overrides: dict | None = None, config_class=PretrainConfig):
    """defaults < recipe < overrides (flags), validated (`config_class.validate()`)."""
    values = load_recipe(recipe, config_class) if recipe else {}
    for k, v in (overrides or {}).items():
        values[k] = coerce(k, v, "--", config_class)
    cfg = config_class(**values)
    cfg.validate()
    return cfg


def run_config(recipe: str | Path | None, overrides: dict, *, resume: bool, config_class=PretrainConfig,
               saved_as: str = "config.json"):
    """The configuration of a run, and the resume policy: a new run may not start over a run
    directory that has checkpoints; `resume` continues OUT/`saved_as` as it was, except for the
    RESUME_MAY_CHANGE keys. (Post-training saves it as run_config.json: its OUT/config.json is the
    final model's.)"""
    from crucible.train.checkpoint import LATEST

    if not resume:
        cfg = build_config(recipe, overrides, config_class)
        if (Path(cfg.out) / LATEST).exists():
            raise ConfigError(f"{cfg.out} already has checkpoints: pass --resume, or choose another --out")
        return cfg
    out = Path(overrides.get("out") or (build_config(recipe, None, config_class) if recipe else config_class()).out)
    saved = out / saved_as
    if not saved.is_file():
        raise ConfigError(f"{saved}: no run to resume")
    cfg = config_class(**json.loads(saved.read_text()))
    changed = [k for k, v in overrides.items() if k != "out" and getattr(cfg, k) != v]
    bad = [k for k in changed if k not in RESUME_MAY_CHANGE]
    if bad:
        raise ConfigError(f"--resume continues {saved} as it was; cannot change {', '.join(bad)}")
    for k in changed:
        setattr(cfg, k, overrides[k])
    cfg.validate()
    return cfg
