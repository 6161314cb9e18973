"""Run the agent over instances K times and grade every run (`crucible swe run`).

RUN/run-r/ holds one run (seed S + r): trajectories.jsonl (one agent run per instance, appended as
each ends), preds.jsonl (SWE-bench predictions made from them), and what grading writes there
(`crucible.swe.grade`). A re-run with the same RUN runs only the instances a run lacks; RUN/config.json
records the model and agent settings, and a RUN made with other settings is refused.

RUN/report.json: per run the resolved rate with its bootstrap interval, then across runs
pass@1 = mean ± σ of the runs' rates with a t-interval for the mean (variance reduced: every
instance is attempted K times), and pass@k for k = 1..K from each instance's resolved count over
the runs (unbiased estimator, bootstrap interval over instances).

Not covered: resampling only the failed runs, or mixing runs made with different settings.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from crucible.eval.runs import mean_interval
from crucible.eval.sampling import task_seed
from crucible.eval.settings import settings
from crucible.io import atomic_write
from crucible.metrics import pass_at_k_table
from crucible.swe.agent import AgentConfig, solve
from crucible.swe.grade import RESULTS, grade_predictions
from crucible.swe.instances import append_jsonl, read_jsonl

TRAJECTORIES, PREDICTIONS, CONFIG, REPORT = "trajectories.jsonl", "preds.jsonl", "config.json", "report.json"


class SettingsMismatch(ValueError):
    pass


def run_settings(spec: str, config: AgentConfig, seed: int | None) -> dict:
    return {**settings(spec, config.params, True), "seed": seed, "step_limit": config.step_limit,
            "time_limit_s": config.time_limit_s, "command_limits": asdict(config.command_limits)}


def check_settings(out: Path, wanted: dict) -> None:
    """Refuse a RUN made with other settings (before anything is loaded or written)."""
    path = out / CONFIG
    if not path.exists():
        return
    had = json.loads(path.read_text())
    diff = [f"{k}: {had.get(k)!r} there, {v!r} now" for k, v in wanted.items() if had.get(k) != v]
    if diff:
        raise SettingsMismatch(f"{path}: {out} was run with other settings ({'; '.join(diff)}); use another --out")


def run_once(backend, root: Path, instances: list[dict], out: Path, config: AgentConfig, *, model: str,
             seed: int | None, workers: int, unsafe: bool, progress: bool) -> dict:
    """One agent run over every instance into `out`, then its grading summary."""
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    done = {r["instance_id"] for r in read_jsonl(out / TRAJECTORIES)}
    todo = [i for i in instances if i["instance_id"] not in done]

    def one(instance):
        s = None if seed is None else task_seed(seed, instance["instance_id"], 0)
        return solve(backend, root, instance, config, seed=s, unsafe=unsafe)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for row in tqdm(pool.map(one, todo), total=len(todo), desc=f"swe run {out.name}", unit="instance",
                        disable=not progress):
            append_jsonl(out / TRAJECTORIES, {**row, "model_name_or_path": model, "seed": seed})
            append_jsonl(out / PREDICTIONS, {"instance_id": row["instance_id"], "model_name_or_path": model,
                                             "model_patch": row["model_patch"]})
    predictions = {r["instance_id"]: r for r in read_jsonl(out / PREDICTIONS)}
    return grade_predictions(root, instances, predictions, out, workers=workers, unsafe=unsafe, progress=progress)


def run_agent(backend, root: Path, instances: list[dict], out: Path, config: AgentConfig, *, spec: str,
              runs: int = 1, seed: int | None = 0, workers: int = 1, unsafe: bool = False,
              progress: bool = True) -> dict:
    out = Path(out)
    wanted = run_settings(spec, config, seed)
    check_settings(out, wanted)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / CONFIG, json.dumps(wanted, indent=2) + "\n")
    model = wanted["model"]
    seeds = [None if seed is None else seed + r for r in range(runs)]
    summaries = [run_once(backend, root, instances, out / f"run-{r}", config, model=model, seed=s,
                          workers=workers, unsafe=unsafe, progress=progress) for r, s in enumerate(seeds)]
    results = [read_jsonl(out / f"run-{r}" / RESULTS) for r in range(runs)]
    report = across_runs(instances, summaries, results, seeds)
    atomic_write(out / REPORT, json.dumps(report, indent=2) + "\n")
    return report


def across_runs(instances: list[dict], summaries: list[dict], results: list[list[dict]], seeds) -> dict:
    per_run = [{"run": f"run-{r}", "seed": s, "resolved": summ["resolved_instances"],
                "total": summ["total_instances"], "resolved_rate": summ["resolved_rate"],
                "ci": summ["resolved_rate_ci"], "errors": summ["error_instances"]}
               for r, (s, summ) in enumerate(zip(seeds, summaries))]
    counts = {}
    for instance in sorted(i["instance_id"] for i in instances):
        resolved = sum(any(row["instance_id"] == instance and row["resolved"] for row in run) for run in results)
        counts[instance] = (len(results), resolved)
    passk = pass_at_k_table(counts, range(1, len(results) + 1))
    return {"runs": per_run, "pass@1": mean_interval([r["resolved_rate"] for r in per_run]),
            "pass@k": {str(k): v for k, v in passk.items()},
            "resolved_counts": {k: c for k, (_, c) in counts.items()}}


def render_runs(report: dict) -> str:
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    p = report["pass@1"]
    lines = [f"{r['run']} (seed {r['seed']}): resolved {r['resolved']}/{r['total']} = {pct(r['resolved_rate'])}% "
             f"(95% CI [{pct(r['ci'][0])}, {pct(r['ci'][1])}]), errors {r['errors']}" for r in report["runs"]]
    lines.append(f"pass@1 over {len(report['runs'])} runs: {pct(p['mean'])}% ± {pct(p['std'])} (σ), "
                 f"95% CI of the mean [{pct(p['ci'][0])}, {pct(p['ci'][1])}]")
    for k, v in report["pass@k"].items():
        lines.append(f"pass@{k}: {pct(v['pass'])}% (95% CI [{pct(v['ci'][0])}, {pct(v['ci'][1])}])")
    return "\n".join(lines)
