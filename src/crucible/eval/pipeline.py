"""The measure path end to end: samples -> verdicts -> summary, and a model -> samples first.

`evaluate_samples` grades a list of samples into DIR (resumable, `crucible.grade.runner`) and writes
the summary. `evaluate_model` samples a backend object on the suite's tasks into DIR (or DIR/run-r
for `runs` > 1, with seeds S+r), grades and summarizes each; the caller owns the backend (loads and
closes it), so a policy held in memory (`NativeBackend(engine)`) is evaluated without saving it.
Settings are checked for every run directory before anything is sampled or written
(`check_model_settings`, which a command calls before it even loads the model).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from crucible.eval import EvalError
from crucible.eval.runs import RUNS, render_runs, runs_summary
from crucible.eval.sampling import sample_suite
from crucible.eval.settings import check_settings, record_settings, settings
from crucible.eval.summary import summarize, write_summary
from crucible.generate.types import Backend, GenParams
from crucible.grade.runner import grade_samples
from crucible.io import atomic_write


def evaluate_samples(suite, samples: list[dict], out: str | Path, *, ks, workers: int | None = None,
                     progress: bool = True, pool=None) -> dict:
    """Grade what `out/results.jsonl` lacks, then write and return the summary of all its rows."""
    out = Path(out)
    rows = grade_samples(suite, samples, out, workers=workers, progress=progress, pool=pool)
    summary = summarize(suite.name, rows, ks)
    python_env = getattr(suite, "python_env", None)  # crucible.sandbox.pyenv: opt-in packages
    if python_env is not None:
        summary["python_env"] = python_env.record()
    write_summary(out, summary)
    return summary


def run_plan(out: Path, params: GenParams, runs: int) -> list[tuple[Path, GenParams]]:
    """(directory, sampling parameters) of each run: DIR itself, or DIR/run-r with seed S+r."""
    if runs == 1:
        return [(out, params)]
    return [(out / f"run-{r}", replace(params, seed=None if params.seed is None else params.seed + r))
            for r in range(runs)]


def check_model_settings(out: str | Path, spec: str, params: GenParams, chat: bool, *, n: int = 1,
                         runs: int = 1) -> None:
    """EvalError for impossible settings, or settings that differ from what a run directory holds."""
    why = params.check()
    if why:
        raise EvalError(f"--{why.replace('_', '-', 1)}")
    if n < 1:
        raise EvalError(f"--n must be >= 1, got {n}")
    if runs < 1:
        raise EvalError(f"--runs must be >= 1, got {runs}")
    for d, run_params in run_plan(Path(out), params, runs):
        check_settings(d, settings(spec, run_params, chat))


def evaluate_model(suite, backend: Backend, out: str | Path, *, n: int, params: GenParams, chat: bool = False,
                   runs: int = 1, ks=(1,), workers: int | None = None, progress: bool = True) -> dict:
    """Sample `backend` on `suite.tasks` (n per task), grade, summarize; see the module docstring."""
    out = Path(out)
    check_model_settings(out, backend.spec, params, chat, n=n, runs=runs)
    plan = run_plan(out, params, runs)
    summaries = []
    for d, run_params in plan:
        d.mkdir(parents=True, exist_ok=True)
        record_settings(d, backend.spec, run_params, chat, n, suite.name)
        samples = sample_suite(suite, backend, d, n=n, params=run_params, chat=chat, progress=progress)
        to_grade = [{k: v for k, v in s.items() if k != "raw"} for s in samples]
        grade_ks = sorted(set(ks) | {1}) if runs > 1 else ks
        summaries.append(evaluate_samples(suite, to_grade, d, ks=grade_ks, workers=workers, progress=progress))
    if runs == 1:
        return summaries[0]
    summary = runs_summary(suite.name, backend.spec, summaries, [p.seed for _, p in plan], [d.name for d, _ in plan])
    atomic_write(out / RUNS, json.dumps(summary, indent=2) + "\n")
    write_summary(out, summary, render_runs(summary))
    return summary

