"""Training checkpoints that a kill at any moment cannot break, and that resume bit-exactly.

A checkpoint is a directory `RUN/step_000123/`:
  config.json, model.safetensors, tokenizer files   `GPT.save_pretrained` (HF-loadable weights)
  trainer/optimizer.pt (or optimizer_rank{r}.pt)     optimizer states (per rank under FSDP: sharded)
  trainer/rng_rank{r}.pt                             torch / CUDA / numpy / python RNG states
  trainer/state.pt                                   step, data position, elapsed seconds, averager
  trainer/state.json                                 the same scalars, readable
It is written under `RUN/.tmp-step_000123/`, fsynced, renamed into place, and only then is
`RUN/latest` (a one-line file naming the directory) replaced atomically (write + fsync + rename).
A kill during the write leaves a `.tmp-` directory that nothing reads (the next save removes it);
`latest` always names a complete checkpoint. Old checkpoints beyond `keep` are pruned after.

Not covered: asynchronous saving, and resuming an FSDP run on a different number of ranks (its
optimizer state is saved sharded).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

LATEST = "latest"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for root, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(Path(root))


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def step_dir_name(step: int) -> str:
    return f"step_{step:06d}"


def latest(run_dir: str | Path) -> Path | None:
    """The complete checkpoint `latest` names, or None."""
    run_dir = Path(run_dir)
    pointer = run_dir / LATEST
    if not pointer.is_file():
        return None
    path = run_dir / pointer.read_text().strip()
    if not (path / "trainer" / "state.pt").is_file():
        raise FileNotFoundError(f"{pointer} names {path.name}, which is incomplete or missing")
    return path


def require_latest(run_dir: str | Path) -> Path:
    """The checkpoint a resumed run continues from; FileNotFoundError when there is none."""
    path = latest(run_dir)
    if path is None:
        raise FileNotFoundError(f"{run_dir}: nothing to resume (no {LATEST} file)")
    return path


def save(run_dir: str | Path, step: int, *, save_model, optimizers, state: dict, rank: int = 0,
         world: int = 1, sharded_optimizer: bool = False, barrier=lambda: None, keep: int = 2) -> Path:
    """Write checkpoint `step`. `save_model(dir)` writes the weights (rank 0 only); `state` is a
    torch-saveable dict (step, position, ...). Every rank calls this; rank 0 does the renames."""
    run_dir = Path(run_dir)
    name = step_dir_name(step)
    tmp = run_dir / f".tmp-{name}"
    if rank == 0:
        for stale in run_dir.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        (tmp / "trainer").mkdir(parents=True)
        save_model(tmp)
    barrier()
    if sharded_optimizer or rank == 0:
        opt_name = f"optimizer_rank{rank}.pt" if sharded_optimizer else "optimizer.pt"
        torch.save([opt.state_dict() for opt in optimizers], tmp / "trainer" / opt_name)
    torch.save(rng_state(), tmp / "trainer" / f"rng_rank{rank}.pt")
    barrier()
    final = run_dir / name
    if rank == 0:
        torch.save(state, tmp / "trainer" / "state.pt")
        scalars = {k: v for k, v in state.items() if isinstance(v, (int, float, str, bool))}
        (tmp / "trainer" / "state.json").write_text(json.dumps({**scalars, "world": world,
                                                                "sharded_optimizer": sharded_optimizer}) + "\n")
        _fsync_tree(tmp)
        if final.exists():   # re-saving a step (after a resume): move the old one aside first
            old = run_dir / f".tmp-old-{name}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(run_dir)
        pointer_tmp = run_dir / (LATEST + ".tmp")
        with open(pointer_tmp, "w") as f:
            f.write(name + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(pointer_tmp, run_dir / LATEST)
        _fsync_dir(run_dir)
        _prune(run_dir, keep, final)
    barrier()
    return final


def _prune(run_dir: Path, keep: int, current: Path) -> None:
    if keep <= 0:
        return
    steps = sorted(p for p in run_dir.glob("step_*") if p.is_dir())
    for old in steps[:-keep]:
        if old != current:
            shutil.rmtree(old, ignore_errors=True)


def load(path: str | Path, *, optimizers, rank: int = 0, map_location="cpu") -> dict:
    """Restore optimizer states and RNG from checkpoint `path`; returns the trainer state dict.
    (The weights are loaded by the caller, from `path` with GPT.from_pretrained.)"""
    trainer = Path(path) / "trainer"
    meta = json.loads((trainer / "state.json").read_text())
    opt_file = trainer / (f"optimizer_rank{rank}.pt" if meta.get("sharded_optimizer") else "optimizer.pt")
    states = torch.load(opt_file, map_location=map_location, weights_only=False)
    if len(states) != len(optimizers):
        raise ValueError(f"{opt_file}: {len(states)} optimizer states for {len(optimizers)} optimizers")
    for opt, st in zip(optimizers, states):
        opt.load_state_dict(st)
    rng_file = trainer / f"rng_rank{rank}.pt"
    if rng_file.is_file():
        set_rng_state(torch.load(rng_file, map_location="cpu", weights_only=False))
    return torch.load(trainer / "state.pt", map_location=map_location, weights_only=False)
