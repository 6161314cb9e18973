"""One samples file, one model and one set of sampling settings: the guard and its record.

`DIR/sampling.json` records the model and the sampling settings. Once DIR holds samples, re-using it
with different ones is refused before anything is loaded or written (n and the task selection may
change: more samples are added, fewer are ignored). An `openai:` spec counts by its model name: the
server's URL may change between runs (a new port), the model may not.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from crucible.eval import EvalError
from crucible.generate.types import GenParams
from crucible.io import atomic_write

CONFIG = "sampling.json"
SAMPLES = "samples.jsonl"


def settings(spec: str, params: GenParams, chat: bool) -> dict:
    """What must match for samples to be mixed in one file."""
    p = asdict(params)
    p.pop("stop")
    model = spec.split("@", 1)[0] if spec.startswith("openai:") else spec
    return {"model": model, "chat": chat, **p}


def has_samples(out: Path) -> bool:
    return (out / SAMPLES).exists() and (out / SAMPLES).stat().st_size > 0


def check_settings(out: Path, wanted: dict) -> None:
    """EvalError if `out` already holds samples drawn with other settings."""
    path = out / CONFIG
    if not path.exists() or not has_samples(out):
        return  # nothing sampled yet (say, the server was unreachable): the settings may change
    try:
        had = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise EvalError(f"{path}: not valid JSON") from None
    diff = [f"{k}: {had.get(k)!r} there, {v!r} now" for k, v in wanted.items() if had.get(k) != v]
    if diff:
        raise EvalError(f"{path}: {out} was sampled with other settings ({'; '.join(diff)}); "
                        "use another --out")


def record_settings(out: Path, spec: str, params: GenParams, chat: bool, n: int, suite_name: str) -> None:
    """Write sampling.json, unless samples drawn under the one there already exist."""
    if not has_samples(out) or not (out / CONFIG).exists():
        atomic_write(out / CONFIG, json.dumps({**settings(spec, params, chat), "spec": spec, "n": n,
                                               "suite": suite_name}, indent=2) + "\n")
