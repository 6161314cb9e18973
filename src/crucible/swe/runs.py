"""Run the agent over instances K times and grade every run (`crucible swe run`).

RUN/run-r/ holds one run (seed S + r): trajectories.jsonl (one agent run per instance, appended as
each ends), preds.jsonl (SWE-bench predictions made from them before grading), and what grading
writes there (`crucible.swe.grade`). A re-run with the same RUN runs only the instances a run lacks;
RUN/config.json records the model and agent settings, and a RUN made with other settings is refused.

Every missing (run, instance) agent run goes out at once through a `fan` (threads here, or Ray
tasks with `--ray`: each runs the agent loop and its commands in the sandbox of its node, the
model on a replica next to it); only this process writes, as each comes back, so a cluster run
writes the rows a local one does. A machine that cannot sandbox answers an infrastructure error
(exit_status sandbox_error, an `error` row when graded), never a trajectory a verdict is drawn from.

RUN/report.json: per run the resolved rate with its bootstrap interval, then across runs
pass@1 = mean ± σ of the runs' rates with a t-interval for the mean (variance reduced: every
instance is attempted K times), and pass@k for k = 1..K from each instance's resolved count over
the runs (unbiased estimator, bootstrap interval over instances).

Not covered: resampling only the failed runs, or mixing runs made with different settings.
"""

from __future__ import annotations

import json
import socket
from dataclasses import asdict
from pathlib import Path

from crucible.eval.runs import mean_interval
from crucible.eval.sampling import task_seed
from crucible.eval.settings import settings
from crucible.io import atomic_write
from crucible.metrics import pass_at_k_table
from crucible.sandbox import sandbox_problem
from crucible.swe.agent import AgentConfig, solve
from crucible.swe.grade import RESULTS, append_result, grade_predictions, local_fan
from crucible.swe.instances import append_jsonl, read_jsonl

TRAJECTORIES, PREDICTIONS, CONFIG, REPORT = "trajectories.jsonl", "preds.jsonl", "config.json", "report.json"
SANDBOX_ERROR = "sandbox_error"  # exit_status of an agent run whose machine could not sandbox it


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


def attempt(backend, root: Path, config: AgentConfig, unsafe: bool, job: tuple[dict, int | None]) -> dict:
    """One agent run, job = (instance, seed): a trajectory row. Pure (a fresh workspace, no file kept),
    so it may run anywhere; where the machine cannot sandbox, an infrastructure error, not a run."""
    instance, seed = job
    why = sandbox_problem(unsafe)
    if why is not None:
        return {"instance_id": instance["instance_id"], "messages": [], "exit_status": SANDBOX_ERROR,
                "detail": f"node {socket.gethostname()}: {why}", "steps": 0, "salvaged": False,
                "model_patch": None, "wall_s": 0.0}
    return solve(backend, root, instance, config, seed=seed, unsafe=unsafe)


def run_attempts(backend, root: Path, instances: list[dict], dirs: list[Path], seeds: list[int | None],
                 config: AgentConfig, *, model: str, workers: int, unsafe: bool, progress: bool, fan=None) -> None:
    """Every (run, instance) agent run that a run directory lacks, through `fan` (default: `workers`
    threads here; crucible.scale.fanout.fan_out puts them on a Ray cluster); this process alone
    appends each trajectory as it comes back."""
    from tqdm import tqdm

    jobs, places = [], []
    for d, s in zip(dirs, seeds):
        d.mkdir(parents=True, exist_ok=True)
        done = {r["instance_id"] for r in read_jsonl(d / TRAJECTORIES)}
        for i in instances:
            if i["instance_id"] not in done:
                jobs.append((i, None if s is None else task_seed(s, i["instance_id"], 0)))
                places.append((d, s))
    finished = (fan or local_fan(workers))(attempt, jobs, shared=(backend, root, config, unsafe))
    for index, row in tqdm(finished, total=len(jobs), desc="swe run", unit="agent run", disable=not progress):
        d, s = places[index]
        append_jsonl(d / TRAJECTORIES, {**row, "model_name_or_path": model, "seed": s})


def grade_run(root: Path, instances: list[dict], d: Path, *, workers: int, unsafe: bool, progress: bool,
              fan=None) -> dict:
    """preds.jsonl from the run's trajectories (caught up after a kill), then grading. An agent run
    that could not sandbox is an error row, never a verdict, and no prediction."""
    have = {r["instance_id"] for r in read_jsonl(d / PREDICTIONS)}
    graded = {r["instance_id"] for r in read_jsonl(d / RESULTS)}
    predictions = {}
    for row in read_jsonl(d / TRAJECTORIES):
        iid, model = row["instance_id"], row["model_name_or_path"]
        if row["exit_status"] == SANDBOX_ERROR:
            if iid not in graded:
                append_result(d, iid, model, {"resolved": False, "patch_exists": False,
                                              "patch_successfully_applied": False,
                                              "error": f"the agent could not run: {row['detail']}"})
            continue
        predictions[iid] = {"instance_id": iid, "model_name_or_path": model, "model_patch": row["model_patch"]}
        if iid not in have:
            append_jsonl(d / PREDICTIONS, predictions[iid])
    return grade_predictions(root, instances, predictions, d, workers=workers, unsafe=unsafe, progress=progress,
                             fan=fan)


def run_agent(backend, root: Path, instances: list[dict], out: Path, config: AgentConfig, *, spec: str,
              runs: int = 1, seed: int | None = 0, workers: int = 1, unsafe: bool = False,
              progress: bool = True, fan=None) -> dict:
    """Every agent run, then each run graded, then RUN/report.json. `fan`: how agent runs and
    grading jobs run (see `run_attempts`)."""
    out = Path(out)
    wanted = run_settings(spec, config, seed)
    check_settings(out, wanted)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / CONFIG, json.dumps(wanted, indent=2) + "\n")
    seeds = [None if seed is None else seed + r for r in range(runs)]
    dirs = [out / f"run-{r}" for r in range(runs)]
    run_attempts(backend, root, instances, dirs, seeds, config, model=wanted["model"], workers=workers,
                 unsafe=unsafe, progress=progress, fan=fan)
    summaries = [grade_run(root, instances, d, workers=workers, unsafe=unsafe, progress=progress, fan=fan)
                 for d in dirs]
    results = [read_jsonl(d / RESULTS) for d in dirs]
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
