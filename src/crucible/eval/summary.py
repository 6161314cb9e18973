"""Results rows -> the summary of one evaluation: pass@k with 95% intervals, overall and per language.

Recomputed from all the rows of results.jsonl each time, so an interrupted-then-resumed run and an
uninterrupted one give the same summary. Written as summary.json and summary.md (atomically).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from crucible.grade import INFRA
from crucible.io import atomic_write
from crucible.metrics import pass_at_k_table, task_counts

SUMMARY = "summary.json"
SUMMARY_MD = "summary.md"


def summarize(suite_name: str, rows: list[dict], ks) -> dict:
    """pass@k with 95% intervals, overall and per language, plus status counts."""
    def table(subset):
        t = pass_at_k_table(task_counts(subset, key=lambda r: f"{r['task_id']}\x1f{r['language']}"), ks)
        return {
            "n_tasks": len({r["task_id"] for r in subset}),
            "n_samples": len(subset),
            "pass@k": {str(k): v["pass"] for k, v in t.items()},
            "ci": {str(k): v["ci"] for k, v in t.items()},
            "status_counts": dict(Counter(r["status"] for r in subset)),
        }

    summary = {"suite": suite_name, **table(rows)}
    summary["executed"] = sum(1 for r in rows if r.get("executed"))
    languages = sorted({r["language"] for r in rows})
    if len(languages) > 1 or (languages and languages[0] != "python"):
        summary["languages"] = {lang: table([r for r in rows if r["language"] == lang]) for lang in languages}
    return summary


def write_summary(out: Path, summary: dict, markdown: str | None = None) -> None:
    """summary.json and summary.md (`render_markdown` of it unless `markdown` is given)."""
    atomic_write(out / SUMMARY, json.dumps(summary, indent=2) + "\n")
    atomic_write(out / SUMMARY_MD, render_markdown(summary) if markdown is None else markdown)


def render_markdown(summary: dict) -> str:
    lines = [f"# {summary['suite']}: {summary['n_tasks']} tasks, {summary['n_samples']} samples", ""]
    groups = summary.get("languages") or {"all": summary}
    ks = sorted({int(k) for g in groups.values() for k in g["pass@k"]})
    lines.append("| language | tasks | samples | " + " | ".join(f"pass@{k} (95% CI)" for k in ks) + " |")
    lines.append("|---|---:|---:|" + "---:|" * len(ks))
    for name, g in groups.items():
        cells = []
        for k in ks:
            if str(k) in g["pass@k"]:
                lo, hi = g["ci"][str(k)]
                cells.append(f"{100 * g['pass@k'][str(k)]:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]")
            else:
                cells.append("—")
        lines.append(f"| {name} | {g['n_tasks']} | {g['n_samples']} | " + " | ".join(cells) + " |")
    if summary.get("python_env"):
        env = summary["python_env"]
        packages = ", ".join(f"{n} {v}" for n, v in env["packages"].items())
        lines += ["", f"Python env: {env['dir']} (id {env['id']}): {packages}"]
    lines += ["", "| status | count |", "|---|---:|"]
    for status, count in sorted(summary["status_counts"].items(), key=lambda kv: -kv[1]):
        note = " (infrastructure)" if status in INFRA else ""
        lines.append(f"| {status}{note} | {count} |")
    return "\n".join(lines) + "\n"
