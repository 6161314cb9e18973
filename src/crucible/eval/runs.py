"""`--runs R`: the same evaluation repeated with seeds S..S+R-1, summarized as mean ± σ of pass@1.

Each run is a full evaluation in DIR/run-r; DIR/runs.json (and DIR/summary.json, DIR/summary.md)
hold the mean, the sample standard deviation and a 95% Student t-interval for the mean of pass@1,
overall and per language. Why t and not a bootstrap: a handful of runs, each already a mean.
"""

from __future__ import annotations

import statistics

RUNS = "runs.json"
# Two-sided 95% Student t quantiles for 1..30 degrees of freedom (no scipy here); 1.96 beyond.
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042)


def mean_interval(values: list[float]) -> dict:
    """Mean, sample standard deviation and a 95% t-interval for the mean."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return {"mean": mean, "std": 0.0, "ci": [mean, mean]}
    std = statistics.stdev(values)
    t = T975[len(values) - 2] if len(values) - 1 <= len(T975) else 1.96
    half = t * std / len(values) ** 0.5
    return {"mean": mean, "std": std, "ci": [max(0.0, mean - half), min(1.0, mean + half)]}


def runs_summary(suite_name: str, spec: str, summaries: list[dict], seeds, names) -> dict:
    per_run = [{"run": name, "seed": seed, "pass@1": s["pass@k"]["1"], "ci": s["ci"]["1"],
                "n_tasks": s["n_tasks"], "n_samples": s["n_samples"]}
               for name, seed, s in zip(names, seeds, summaries)]
    summary = {"suite": suite_name, "model": spec, "runs": per_run,
               "pass@1": mean_interval([r["pass@1"] for r in per_run])}
    languages = sorted({lang for s in summaries for lang in s.get("languages", {})})
    if languages:
        summary["languages"] = {lang: mean_interval([s["languages"][lang]["pass@k"]["1"] for s in summaries
                                                     if lang in s.get("languages", {})]) for lang in languages}
    return summary


def render_runs(summary: dict) -> str:
    p = summary["pass@1"]
    runs = summary["runs"]
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    lines = [f"# {summary['suite']}: {len(runs)} runs of {summary['model']}", "",
             f"pass@1 across runs: {pct(p['mean'])}% ± {pct(p['std'])} (σ); "
             f"95% CI of the mean [{pct(p['ci'][0])}, {pct(p['ci'][1])}]", "",
             "| run | seed | tasks | samples | pass@1 (95% CI) |", "|---|---:|---:|---:|---:|"]
    for r in runs:
        lines.append(f"| {r['run']} | {r['seed']} | {r['n_tasks']} | {r['n_samples']} | "
                     f"{pct(r['pass@1'])}% [{pct(r['ci'][0])}, {pct(r['ci'][1])}] |")
    for lang, m in summary.get("languages", {}).items():
        lines.append(f"\n{lang}: pass@1 {pct(m['mean'])}% ± {pct(m['std'])} (σ); "
                     f"95% CI of the mean [{pct(m['ci'][0])}, {pct(m['ci'][1])}]")
    return "\n".join(lines) + "\n"
