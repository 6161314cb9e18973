"""The figures of the run page (matplotlib, Agg), each a PNG in RUN/report/, drawn only when the run
has what it shows: pass@k curves per eval stage (the curves of `crucible report DIR`), pass@1 by
stage, mining yield, Δ pass@1 per compare stage, vote@N beside pass@1 and pass@N, and training curves
per kind (pretrain loss and val bpb, SFT/DPO loss and val loss, GRPO mean reward). Intervals are drawn
as error bars or bands wherever the records have them. The numbers come from `run_page` (pure).
"""

from __future__ import annotations

from pathlib import Path

from crucible.report.render import plot_passk, pyplot, save_png
from crucible.report.run_page import eval_label, mining_yield, pass1_points, training_series

PERCENT = 100.0


def plot_points(points: list[tuple[str, float, float, float]], path: Path, title: str, ylabel: str, *,
                scale: float = PERCENT, zero_line: bool = False) -> None:
    """One marker with its interval per label, in the given order (rounds, compare stages)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(points) + 2), 3.8), dpi=120)
    xs = range(len(points))
    ys = [scale * p[1] for p in points]
    err = [[scale * (p[1] - p[2]) for p in points], [scale * (p[3] - p[1]) for p in points]]
    ax.errorbar(xs, ys, yerr=err, fmt="o-" if not zero_line else "o", capsize=4)
    if zero_line:
        ax.axhline(0, color="#888", linewidth=1)
    ax.set_xticks(list(xs), [p[0] for p in points], rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} (95% intervals)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def plot_bars(groups: list[tuple[str, list[tuple[str, float, float, float]]]], path: Path, title: str) -> None:
    """Grouped bars (in %) with error bars: one group per stage, one bar per measure."""
    plt = pyplot()
    names = [name for name, *_ in groups[0][1]]
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(5.5, 1.4 * len(groups) + 2), 3.8), dpi=120)
    for j, name in enumerate(names):
        bars = [dict((b[0], b[1:]) for b in measures)[name] for _, measures in groups]
        xs = [i + (j - (len(names) - 1) / 2) * width for i in range(len(groups))]
        ax.bar(xs, [100 * v for v, _, _ in bars], width, label=name,
               yerr=[[100 * (v - lo) for v, lo, _ in bars], [100 * (hi - v) for v, _, hi in bars]], capsize=3)
    ax.set_xticks(range(len(groups)), [g for g, _ in groups])
    ax.set_ylabel("%")
    ax.set_ylim(0, 105)
    ax.set_title(f"{title}\n(error bars: 95% intervals)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def plot_training(entries: list[dict], path: Path, title: str) -> None:
    """One panel per curve (train loss, val bpb, ...): a line per stage, bands or error bars where the
    log has an interval."""
    plt = pyplot()
    series = [(e["stage"], training_series(e)) for e in entries]
    panels = list(dict.fromkeys(p for _, s in series for p in s))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), dpi=120, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for stage, s in series:
            points = s.get(panel, [])
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            with_ci = [p for p in points if p[2] is not None]
            if len(with_ci) == len(points) and panel == "mean reward":
                (line,) = ax.plot(xs, ys, label=stage)
                ax.fill_between(xs, [p[2] for p in points], [p[3] for p in points], color=line.get_color(),
                                alpha=0.15, linewidth=0)
            elif with_ci:
                ax.errorbar([p[0] for p in with_ci], [p[1] for p in with_ci], capsize=3, fmt="o-", label=stage,
                            yerr=[[max(0, p[1] - p[2]) for p in with_ci], [max(0, p[3] - p[1]) for p in with_ci]])
                # (max: a percentile interval need not contain its point estimate)
            elif points:
                ax.plot(xs, ys, label=stage)
        ax.set_xlabel("step")
        ax.set_title(panel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{title} (bands / error bars: 95% intervals)")
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def write_figures(run: dict, folder: Path) -> dict[str, str]:
    """Draw what the run has into `folder`; returns {figure key: file name}."""
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, str] = {}

    def draw(key: str, plot, *args, **kwargs) -> None:
        name = f"run-{key}.png"
        plot(*args, folder / name, **kwargs)
        made[key] = name

    if run["evals"]:
        curves = {eval_label(e["stage"], lang, len(e["report"]["languages"])): v
                  for e in run["evals"] for lang, v in e["report"]["languages"].items()}
        draw("passk", plot_passk, {"languages": curves}, title="pass@k per eval stage")
        draw("pass1", plot_points, pass1_points(run["evals"]), title="pass@1 by stage", ylabel="pass@1 (%)")
    if run["mines"]:
        draw("mine", plot_bars, [(m["stage"], [("pass@1", m["pass@1"], *m["pass@1_ci"]),
                                                ("yield (mined / samples)", *mining_yield(m))]) for m in run["mines"]],
             title="mining")
    if run["compares"]:
        draw("compare", plot_points, [(c["stage"], c["delta"], *c["ci"]) for c in run["compares"]],
             title="Δ pass@1 (B − A) per compare stage", ylabel="Δ pass@1 (points)", zero_line=True)
    if run["votes"]:
        draw("vote", plot_bars, [(v["stage"], [(m, v[m]["value"], *v[m]["ci"]) for m in ("pass@1", "vote@N", "pass@N")])
                                 for v in run["votes"]], title="pass@1, vote@N, pass@N")
    for kind in ("pretrain", "sft", "dpo", "grpo"):
        entries = [t for t in run["training"] if t["kind"] == kind and any(training_series(t).values())]
        if entries:
            draw(kind, plot_training, entries, title=kind)
    return made
