"""Per-language reports from any results directory: pass@k tables, curves, and how failures happen.

Input is `DIR/results.jsonl` as written by `crucible.grade.runner` (one row per sample: task_id,
language, status, passed; puzzles add difficulty). Output:

- pass@k per language for k = 1, 2, 4, ... and n, the smallest per-task sample count, each with a
  95% bootstrap interval over tasks (the unbiased estimator of Chen et al., `crucible.metrics`);
- a failure-mode table per language: the share of samples that passed, gave a wrong answer, did not
  compile, crashed, timed out, hit a memory or output limit, or failed for infrastructure reasons
  (sandbox_error, never the model's fault and listed apart);
- missing modules per language: runtime errors whose detail is "missing module X" (the program
  imported a package the sandbox's Python lacks; see `crucible.sandbox.pyenv`), counted per module
  with the share of samples and its 95% interval over tasks;
- pass@1 per language and difficulty when rows carry a difficulty;
- `passk.png` (pass@k curves with interval bands, log-k axis) and `failures.png` (stacked shares).

Not covered: comparing two results directories (run the report on each).
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path

from crucible.languages.python import MISSING_MODULE
from crucible.metrics import bootstrap_ci, pass_at_k_table, task_counts

RESULTS = "results.jsonl"
FAILURE_COLUMNS = ("pass", "wrong_answer", "compile_error", "runtime_error", "timeout", "memory", "output_limit",
                   "infra")
INFRA = ("sandbox_error",)


def load_rows(directory: str | Path) -> list[dict]:
    """The complete rows of DIR/results.jsonl (a torn last line is ignored, not repaired)."""
    from crucible.cli import UsageError

    path = Path(directory) / RESULTS
    if not path.is_file():
        raise UsageError(f"{path}: no results here (run `crucible eval ... --out {directory}` first)")
    rows = []
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                break  # being written, or torn by a kill: the grader will redo it
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise UsageError(f"{path}:{lineno}: not valid JSON") from None
            if not isinstance(row, dict) or not {"task_id", "language", "status"} <= row.keys():
                raise UsageError(f"{path}:{lineno}: expected a results row with task_id, language, status")
            rows.append(row)
    if not rows:
        raise UsageError(f"{path}: no complete rows yet")
    return rows


def by_language(rows: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[r["language"]].append(r)
    return dict(sorted(groups.items()))


def powers_of_two(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself (pass@n is the most a run of n samples can say)."""
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    return ks + ([n] if n >= 1 and ks[-1] != n else [])


def passk(rows: list[dict]) -> dict:
    """{"n": min samples per task, "tasks": count, "k": {k: {"pass", "ci"}}} for one language."""
    counts = task_counts(rows)
    n = min(v[0] for v in counts.values())
    table = pass_at_k_table(counts, powers_of_two(n))
    return {"n": n, "tasks": len(counts), "k": table}


def failure_modes(rows: list[dict]) -> dict[str, int]:
    c = Counter("infra" if r["status"] in INFRA else r["status"] for r in rows)
    return {col: c.get(col, 0) for col in FAILURE_COLUMNS} | {k: v for k, v in c.items() if k not in FAILURE_COLUMNS}


def missing_modules(rows: list[dict]) -> dict[str, dict]:
    """{module: {"samples", "share", "ci"}} for runtime errors that name a missing module, most
    frequent first; share is per task, averaged, with a bootstrap interval over tasks."""
    def module(r):
        detail = r.get("detail") or ""
        if r["status"] != "runtime_error" or not detail.startswith(MISSING_MODULE + " "):
            return None
        return detail[len(MISSING_MODULE) + 1:].split(":")[0].strip()

    per_task: dict[str, list[str | None]] = defaultdict(list)
    for r in rows:
        per_task[r["task_id"]].append(module(r))
    counts = Counter(m for mods in per_task.values() for m in mods if m)
    out = {}
    for name, n in counts.most_common():
        shares = [mods.count(name) / len(mods) for _, mods in sorted(per_task.items())]
        lo, hi = bootstrap_ci(shares)
        out[name] = {"samples": n, "share": sum(shares) / len(shares), "ci": [lo, hi]}
    return out


def by_difficulty(rows: list[dict]) -> dict[str, dict[str, float]]:
    """pass@1 (mean pass rate over samples, per task then averaged) by language and difficulty."""
    out: dict[str, dict[str, float]] = {}
    for lang, lrows in by_language(rows).items():
        per: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        for r in lrows:
            if r.get("difficulty"):
                c = per[r["difficulty"]][r["task_id"]]
                c[0] += 1
                c[1] += bool(r.get("passed"))
        out[lang] = {d: sum(c / n for n, c in tasks.values()) / len(tasks) for d, tasks in per.items()}
    return {lang: v for lang, v in out.items() if v}


def build_report(rows: list[dict]) -> dict:
    langs = by_language(rows)
    return {
        "n_samples": len(rows),
        "n_tasks": len({r["task_id"] for r in rows}),
        "languages": {lang: {**passk(lrows), "failures": failure_modes(lrows), "samples": len(lrows),
                             "missing_modules": missing_modules(lrows)}
                      for lang, lrows in langs.items()},
        "difficulty": by_difficulty(rows),
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def render_markdown(report: dict, title: str = "results") -> str:
    langs = report["languages"]
    lines = [f"# {title}: {report['n_tasks']} tasks, {report['n_samples']} samples, {len(langs)} languages", ""]
    ks = sorted({int(k) for v in langs.values() for k in v["k"]})
    lines += ["## pass@k (%, 95% bootstrap interval over tasks)", "",
              "| language | tasks | n | " + " | ".join(f"pass@{k}" for k in ks) + " |",
              "|---|---:|---:|" + "---:|" * len(ks)]
    for lang, v in langs.items():
        cells = []
        for k in ks:
            e = v["k"].get(k)
            cells.append(f"{_pct(e['pass'])} [{_pct(e['ci'][0])}, {_pct(e['ci'][1])}]" if e else "—")
        lines.append(f"| {lang} | {v['tasks']} | {v['n']} | " + " | ".join(cells) + " |")
    extra = sorted({k for v in langs.values() for k in v["failures"] if k not in FAILURE_COLUMNS})
    cols = list(FAILURE_COLUMNS) + extra
    lines += ["", "## How samples end (% of samples; infra = sandbox errors, not the model's fault)", "",
              "| language | samples | " + " | ".join(cols) + " |", "|---|---:|" + "---:|" * len(cols)]
    for lang, v in langs.items():
        total = v["samples"]
        cells = [f"{_pct(v['failures'].get(c, 0) / total)} ({v['failures'].get(c, 0)})" for c in cols]
        lines.append(f"| {lang} | {total} | " + " | ".join(cells) + " |")
    if any(v["missing_modules"] for v in langs.values()):
        lines += ["", "## Missing modules (runtime errors importing a package the sandbox lacks; "
                  "see `crucible sandbox env`)", "",
                  "| language | module | samples | % of samples [95% interval over tasks] |", "|---|---|---:|---:|"]
        for lang, v in langs.items():
            for name, m in v["missing_modules"].items():
                lines.append(f"| {lang} | {name} | {m['samples']} | "
                             f"{_pct(m['share'])} [{_pct(m['ci'][0])}, {_pct(m['ci'][1])}] |")
    if report["difficulty"]:
        diffs = [d for d in ("easy", "medium", "hard") if any(d in v for v in report["difficulty"].values())]
        lines += ["", "## pass@1 by difficulty (%)", "", "| language | " + " | ".join(diffs) + " |",
                  "|---|" + "---:|" * len(diffs)]
        for lang, v in report["difficulty"].items():
            lines.append(f"| {lang} | " + " | ".join(_pct(v[d]) if d in v else "—" for d in diffs) + " |")
    return "\n".join(lines) + "\n"


def plot_passk(report: dict, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for lang, v in report["languages"].items():
        ks = sorted(v["k"])
        if not ks:
            continue
        ys = [100 * v["k"][k]["pass"] for k in ks]
        lo = [100 * v["k"][k]["ci"][0] for k in ks]
        hi = [100 * v["k"][k]["ci"][1] for k in ks]
        (line,) = ax.plot(ks, ys, marker="o", markersize=3, label=lang)
        ax.fill_between(ks, lo, hi, color=line.get_color(), alpha=0.12, linewidth=0)
    ax.set_xscale("log", base=2)
    all_ks = sorted({k for v in report["languages"].values() for k in v["k"]})
    ax.set_xticks(all_ks, [str(k) for k in all_ks])
    ax.minorticks_off()
    ax.set_xlabel("k (samples per task)")
    ax.set_ylabel("pass@k (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title("pass@k per language (bands: 95% interval over tasks)")
    ax.legend(fontsize=8, ncol=2, loc="lower right")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_failures(report: dict, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = list(report["languages"])
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(langs) + 1.6), dpi=120)
    left = [0.0] * len(langs)
    colors = {"pass": "#2ca02c", "wrong_answer": "#ff7f0e", "compile_error": "#d62728", "runtime_error": "#9467bd",
              "timeout": "#8c564b", "memory": "#e377c2", "output_limit": "#bcbd22", "infra": "#7f7f7f"}
    for col in FAILURE_COLUMNS:
        shares = [100 * report["languages"][lang]["failures"].get(col, 0) / report["languages"][lang]["samples"]
                  for lang in langs]
        ax.barh(langs, shares, left=left, color=colors[col], label=col)
        left = [a + b for a, b in zip(left, shares)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of samples")
    ax.invert_yaxis()
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title("How samples end, per language")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _save(fig, path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, bbox_inches="tight")
    os.replace(tmp, path)


def write_report(directory: str | Path, title: str | None = None) -> dict:
    """Render report.md, report.json, passk.png and failures.png into DIR; return the report."""
    directory = Path(directory)
    report = build_report(load_rows(directory))
    title = title or _suite_name(directory) or directory.name
    text = render_markdown(report, title)
    for name, content in (("report.md", text), ("report.json", json.dumps(report, indent=2, default=str) + "\n")):
        tmp = directory / (name + ".tmp")
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, directory / name)
    plot_passk(report, directory / "passk.png")
    plot_failures(report, directory / "failures.png")
    return report


def _suite_name(directory: Path) -> str | None:
    try:
        return json.loads((directory / "summary.json").read_text()).get("suite")
    except (OSError, ValueError):
        return None
