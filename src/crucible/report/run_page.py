"""One HTML page for a whole `crucible run`, from the plain records of `run_files.load_run`.

Pure functions: records in, numbers and HTML text out (the figures are `run_plots`, the files
`run_files`). Sections appear only when the run has such stages: the stages with their metrics and
gate outcomes (or why a stage was skipped), pass@k per eval stage, pass@1 by stage, the
curriculum's decision per round, mining, comparisons, vote@N, pretraining, SFT/DPO and GRPO
curves. Every number with an interval is printed with it (95 %; bootstrap over tasks for pass
rates, Wilson for the curriculum's pass rate and the mining yield, the logged intervals for training).

Every text on the page is escaped (`html.escape`): task ids, languages, probe categories, gate text
and paths can come from model output or user files. Figures are <img> tags with a relative path
(RUN/report/*.png) rather than base64: the page stays small and readable as text, each PNG can be
opened or pasted on its own, and moving RUN moves both together.

Not covered: interactive plots, comparing two runs on one page.
"""

from __future__ import annotations

import html
import math
from pathlib import PurePath

from crucible.metrics import wilson_interval

STYLE = """body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;
vertical-align:top}td.n{text-align:right}.pass{color:#2a7d2a;font-weight:600}.fail{color:#b00020;font-weight:700}
img{max-width:100%;display:block;margin:.5rem 0}.note{color:#8a5a00}"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def num(x) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def pct(value, ci=None) -> str:
    """'44.4% [11.1, 77.8]' (a share with its 95% interval, in percent)."""
    text = f"{100 * value:.1f}%"
    return text + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci is not None else "")


def table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table; header and cells must already be escaped."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def metric_text(metrics: dict | None) -> str:
    """Each metric once, with its interval beside it: X [X.lo, X.hi], X ± X_ci95, compare.delta [lo, hi]."""
    if metrics is None:
        return "(no row in eval_results.jsonl)"
    parts = []
    for key, value in metrics.items():
        if key.endswith((".lo", ".hi", "_ci95")) or key in ("compare.lo", "compare.hi"):
            continue
        base = "compare" if key == "compare.delta" else key
        if f"{base}.lo" in metrics:
            parts.append(f"{key} = {num(value)} [{num(metrics[f'{base}.lo'])}, {num(metrics[f'{base}.hi'])}]")
        elif f"{key}_ci95" in metrics:
            parts.append(f"{key} = {num(value)} ± {num(metrics[f'{key}_ci95'])}")
        else:
            parts.append(f"{key} = {num(value)}")
    return "<br>".join(esc(p) for p in parts) or "—"


def gate_text(check: dict) -> str:
    """'pass' or 'FAIL', the gate, the value, and by how much it held or fell short."""
    word = '<span class="pass">pass</span>' if check["passed"] else '<span class="fail">FAIL</span>'
    margin = check.get("margin")
    how = "" if margin is None else f", {num(abs(margin))} {'over' if margin >= 0 else 'short'}"
    return f"{word} {esc(check['gate'])} ({esc(check['metric'])} = {num(check['value'])}{how})"


def eval_label(stage: str, language: str, languages: int) -> str:
    return stage if languages == 1 else f"{stage} ({language})"


def pass1_points(evals: list[dict]) -> list[tuple[str, float, float, float]]:
    """(label, pass@1, lo, hi) per eval stage and language, in stage order."""
    points = []
    for e in evals:
        langs = e["report"]["languages"]
        for lang, v in langs.items():
            one = v["k"][1]
            points.append((eval_label(e["stage"], lang, len(langs)), one["pass"], *one["ci"]))
    return points


def mining_yield(mine: dict) -> tuple[float, float, float]:
    """Mined programs per sample, with a Wilson 95% interval."""
    samples = mine["samples"]
    lo, hi = wilson_interval(mine["mined"], samples)
    return (mine["mined"] / samples if samples else float("nan"), lo, hi)


def training_series(entry: dict) -> dict[str, list[tuple[int, float, float | None, float | None]]]:
    """{panel: [(step, value, lo, hi)]} from a training log: pretrain loss and val bpb ± its interval,
    SFT/DPO loss and val loss [interval], GRPO mean reward [interval]."""
    train = [r for r in entry["records"] if r["event"] == "train"]
    evals = [r for r in entry["records"] if r["event"] == "eval"]
    if entry["kind"] == "grpo":
        return {"mean reward": [(r["step"], r["reward_mean"], *r.get("reward_ci", (None, None))) for r in train]}
    out = {"train loss": [(r["step"], r["loss"], None, None) for r in train if r.get("loss") is not None]}
    if entry["kind"] == "pretrain":
        out["val bpb"] = [(r["step"], r["bpb"], r["bpb"] - r["bpb_ci95"], r["bpb"] + r["bpb_ci95"])
                          if math.isfinite(r.get("bpb_ci95", math.nan)) else (r["step"], r["bpb"], None, None)
                          for r in evals if "bpb" in r]
    else:
        out["val loss"] = [(r["step"], r["val_loss"], *(r.get("val_loss_ci") or (None, None)))
                           for r in evals if "val_loss" in r]
    return {k: v for k, v in out.items() if v}


def with_interval(point: tuple) -> str:
    _, value, lo, hi = point
    return num(value) if lo is None else f"{num(value)} [{num(lo)}, {num(hi)}]"


def side_name(path: str, stages: set[str]) -> str:
    """A compared directory by its stage name when it is one of this run's stages, else its path."""
    name = PurePath(path).name
    return name if name in stages else path


def section_stages(run: dict) -> str:
    rows = []
    for i, s in enumerate(run["stages"], 1):
        redone = f" (finished {s['finishes']}×)" if s["finishes"] > 1 else ""
        gates = "<br>".join(gate_text(c) for c in s.get("gates") or []) or "—"
        metrics = esc(f"skipped: {s['skipped']}") if s.get("skipped") else metric_text(s.get("metrics"))
        rows.append([str(i), esc(s["stage"]), esc(s["kind"]), esc(s.get("finished") or "—") + redone,
                     metrics, gates])
    return "<h2>Stages</h2>" + table(["#", "stage", "kind", "finished", "metrics [95% interval]", "gates"], rows)


def section_evals(run: dict, figures: dict) -> str:
    if not run["evals"]:
        return ""
    ks = sorted({k for e in run["evals"] for v in e["report"]["languages"].values() for k in v["k"]})
    rows = []
    for e in run["evals"]:
        langs = e["report"]["languages"]
        for lang, v in langs.items():
            rows.append([esc(e["stage"]), esc(lang), str(v["tasks"]), str(v["n"])]
                        + [pct(v["k"][k]["pass"], v["k"][k]["ci"]) if k in v["k"] else "—" for k in ks])
    return ("<h2>pass@k per eval stage</h2>" + image(figures, "passk", "pass@k curves")
            + image(figures, "pass1", "pass@1 by stage")
            + table(["stage", "language", "tasks", "n"] + [f"pass@{k} [95% interval]" for k in ks], rows))


def section_mining(run: dict, figures: dict) -> str:
    if not run["mines"]:
        return ""
    rows, offenders = [], []
    for m in run["mines"]:
        y, lo, hi = mining_yield(m)
        rows.append([esc(m["stage"]), str(m["samples"]), str(m["passing_samples"]),
                     f"{m['tasks_with_a_pass']} / {m['tasks']}", pct(m["pass@1"], m["pass@1_ci"]),
                     str(m["distinct_passing_kept"]), str(m["contaminated"]), str(m["mined"]), str(m["pairs"]),
                     str(m["control"]), pct(y, (lo, hi))])
        offenders += [[esc(m["stage"]), esc(o["task_id"]), esc(o.get("language", "")),
                       esc(", ".join(f"{x.get('suite', '')} {x.get('task_id', '')} {x.get('kind', '')}".strip()
                                     for x in o.get("matches", [])))] for o in m["offenders"][:20]]
    text = ("<h2>Mining</h2>" + image(figures, "mine", "mining yield")
            + table(["stage", "samples", "passing", "tasks with a pass", "pass@1 [95%]", "distinct passing",
                     "contaminated", "mined", "pairs", "control", "yield: mined / samples [Wilson 95%]"], rows))
    if offenders:
        text += "<h3>Dropped as contaminated (first 20 per stage)</h3>" + table(
            ["stage", "task", "language", "reproduces"], offenders)
    return text


def section_compares(run: dict, figures: dict) -> str:
    if not run["compares"]:
        return ""
    stages = {s["stage"] for s in run["stages"]}
    rows = []
    for c in run["compares"]:
        a, b = (esc(side_name(c.get("runs", {}).get(side, side.upper()), stages)) for side in ("a", "b"))
        rows.append([esc(c["stage"]), a, b, str(c["n_tasks"]),
                     pct(c["a"]["pass@1"], c["a"]["ci"]), pct(c["b"]["pass@1"], c["b"]["ci"]),
                     f"{100 * c['delta']:+.1f} [{100 * c['ci'][0]:+.1f}, {100 * c['ci'][1]:+.1f}] points",
                     f"{c['p_value']:.4g}", esc(c.get("test", "").replace("_", " "))])
    return ("<h2>Comparisons (paired Δ pass@1, B − A)</h2>"
            "<p>Each compare stage of the recipe, by name: a negative control sits beside the real round.</p>"
            + image(figures, "compare", "delta pass@1 per compare stage")
            + table(["stage", "A", "B", "tasks", "A pass@1 [95%]", "B pass@1 [95%]", "Δ [95% paired bootstrap]",
                     "p", "test"], rows))


def section_votes(run: dict, figures: dict) -> str:
    if not run["votes"]:
        return ""
    rows = [[esc(v["stage"]), str(v["n_tasks"]), str(v["n"])]
            + [pct(v[m]["value"], v[m]["ci"]) for m in ("pass@1", "vote@N", "pass@N")] for v in run["votes"]]
    return ("<h2>vote@N beside pass@1 and pass@N</h2>" + image(figures, "vote", "vote@N")
            + table(["stage", "tasks", "N", "pass@1 [95%]", "vote@N [95%]", "pass@N [95%]"], rows))


def section_curriculum(run: dict) -> str:
    """One row per curriculum stage, in run order: the round's level, pass rate and choice."""
    if not run["curricula"]:
        return ""
    rows = [[str(i), esc(d["stage"]), str(d["level"]), str(d["samples"]), pct(d["pass_rate"], d["ci"]),
             " / ".join(str(d["tasks"][k]) for k in ("all", "some", "none")), esc(d["action"]), str(d["next_level"])]
            for i, d in enumerate(run["curricula"], 1)]
    return ("<h2>Curriculum</h2><p>Per round: all samples passed → harder, none → easier, else mine here.</p>"
            + table(["round", "stage", "level", "samples", "pass rate [Wilson 95%]", "tasks all / some / none",
                     "action", "next level"], rows))


def section_training(run: dict, figures: dict) -> str:
    titles = {"pretrain": "Pretraining", "sft": "SFT", "dpo": "DPO", "grpo": "GRPO"}
    text = ""
    for kind, title in titles.items():
        entries = [t for t in run["training"] if t["kind"] == kind]
        if not entries:
            continue
        rows = []
        for t in entries:
            for panel, points in training_series(t).items():
                rows.append([esc(t["stage"]), esc(panel), str(points[-1][0]), with_interval(points[-1]),
                             str(len(points))])
        text += (f"<h2>{title}</h2>" + image(figures, kind, f"{title} curves")
                 + table(["stage", "curve", "last step", "last value [95% interval]", "points"], rows))
    return text


def image(figures: dict, key: str, alt: str) -> str:
    return f'<img src="{esc(figures[key])}" alt="{esc(alt)}">' if key in figures else ""


def render_page(run: dict, figures: dict[str, str], title: str | None = None) -> str:
    """The whole page; `figures` maps a figure key (passk, pass1, mine, compare, vote, pretrain, sft,
    dpo, grpo) to its relative path."""
    title = title or f"crucible run {run['name']}"
    notes = "".join(f'<li class="note">{esc(n)}</li>' for n in run["notes"])
    parts = [f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>",
             f"<p>recipe: {esc(run.get('recipe') or '—')}; {len(run['stages'])} finished stages "
             f"({sum(bool(s.get('skipped')) for s in run['stages'])} skipped). "
             "Intervals are 95 %.</p>",
             f"<ul>{notes}</ul>" if notes else "",
             section_stages(run), section_evals(run, figures), section_curriculum(run), section_mining(run, figures),
             section_compares(run, figures), section_votes(run, figures), section_training(run, figures),
             "</body></html>\n"]
    return "\n".join(p for p in parts if p)
