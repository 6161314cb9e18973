"""A report rendered: report.md and report.json, and two figures (pass@k curves, how samples end)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from crucible.io import atomic_write, replacing
from crucible.report.build import FAILURE_COLUMNS, build_report, load_rows


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
        diffs = difficulty_columns({d for v in report["difficulty"].values() for d in v})
        lines += ["", "## pass@1 by difficulty (%)", "", "| language | " + " | ".join(diffs) + " |",
                  "|---|" + "---:|" * len(diffs)]
        for lang, v in report["difficulty"].items():
            lines.append(f"| {lang} | " + " | ".join(_pct(v[d]) if d in v else "—" for d in diffs) + " |")
    return "\n".join(lines) + "\n"


def difficulty_columns(found: set[str]) -> list[str]:
    """Puzzles' easy, medium, hard in that order, then any other difficulty ("level 2" before "level 10")."""
    order = ("easy", "medium", "hard")
    natural = lambda d: [(0, int(x), "") if x.isdigit() else (1, 0, x) for x in re.split(r"(\d+)", d)]  # noqa: E731
    return [d for d in order if d in found] + sorted(found - set(order), key=natural)


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_passk(report: dict, path: str | Path, title: str = "pass@k per language") -> None:
    """One curve per key of report["languages"] (a language, or any label: the run page passes stages)."""
    plt = pyplot()
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
    ax.set_title(f"{title} (bands: 95% interval over tasks)")
    ax.legend(fontsize=8, ncol=2, loc="lower right")
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def plot_failures(report: dict, path: str | Path) -> None:
    plt = pyplot()
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
    save_png(fig, path)
    plt.close(fig)


def save_png(fig, path: str | Path) -> None:
    with replacing(path) as tmp:
        fig.savefig(tmp, bbox_inches="tight", format="png")


def write_report(directory: str | Path, title: str | None = None) -> dict:
    """Render report.md, report.json, passk.png and failures.png into DIR; return the report."""
    directory = Path(directory)
    report = build_report(load_rows(directory))
    title = title or _suite_name(directory) or directory.name
    text = render_markdown(report, title)
    atomic_write(directory / "report.md", text)
    atomic_write(directory / "report.json", json.dumps(report, indent=2, default=str) + "\n")
    plot_passk(report, directory / "passk.png")
    plot_failures(report, directory / "failures.png")
    return report


def _suite_name(directory: Path) -> str | None:
    try:
        return json.loads((directory / "summary.json").read_text()).get("suite")
    except (OSError, ValueError):
        return None
