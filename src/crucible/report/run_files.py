"""The files of a `crucible run` directory, read into plain records; and the page written from them.

A run directory (`crucible.improve.run`) has RUN/run.json (the finished stages and their recipe
tables), RUN/eval_results.jsonl (one row per stage finish: metrics and gate checks) and one directory
per stage. `load_run` reads what is there, by stage kind:

    eval      RUN/<stage>/results.jsonl   -> pass@k per language (`report.build`, as `crucible report DIR`)
    mine      mine.json, contamination.jsonl
    compare   compare.json
    vote      vote.json (the runner gives `crucible vote` the stage's directory as --out)
    curriculum  decision.json (one per round; the run's append-only history is RUN/curriculum.jsonl)
    pretrain, sft, dpo, grpo   log.jsonl (the training loop's step and eval records)

A stage without its file is noted on the page, never an error: a run may still be going. Without
eval_results.jsonl (a run killed before its first row) the stages come from run.json and the page says
so. Stage rows: the latest row of each stage (a --force redo appends a second one). A stage whose
`when` was false carries "skipped" (the reason) and has no directory: it is listed, never noted missing.

The file names are improve's (`crucible.improve.run`); report sits below improve and may not import
it, so they are repeated here (a test checks they agree). Not covered: stages that run several
evaluations (`--runs`; their top-level directory has no results.jsonl: listed, not plotted).
"""

from __future__ import annotations

from pathlib import Path

from crucible.io import JsonlError, atomic_write, parse_line, read_jsonl
from crucible.report.build import ReportError, build_report, load_rows

RUN_STATE = "run.json"
EVAL_RESULTS = "eval_results.jsonl"
PAGE = "report.html"
FIGURES = "report"
TRAINING_KINDS = ("pretrain", "sft", "dpo", "grpo")
NEEDS = {"eval": "results.jsonl", "mine": "mine.json", "compare": "compare.json", "vote": "vote.json",
         "curriculum": "decision.json",
         **{kind: "log.jsonl" for kind in TRAINING_KINDS}}


def is_run_dir(directory: str | Path) -> bool:
    return (Path(directory) / RUN_STATE).is_file()


def read_json(path: Path) -> dict:
    try:
        return parse_line(path, 1, path.read_bytes())
    except JsonlError as e:
        raise ReportError(str(e)) from None


def stage_rows(run: Path, state: dict, notes: list[str]) -> list[dict]:
    """One record per stage: the latest eval_results row, else run.json's entry (metrics unknown)."""
    path = run / EVAL_RESULTS
    latest: dict[str, dict] = {}
    if path.is_file():
        for lineno, row in read_jsonl(path):
            if not {"stage", "kind"} <= row.keys():
                raise ReportError(f"{path}:{lineno}: expected a row with stage and kind")
            earlier = latest.pop(row["stage"], {})  # re-inserted: the order is that of each stage's latest finish
            latest[row["stage"]] = {**row, "finishes": earlier.get("finishes", 0) + 1}
    else:
        notes.append(f"{EVAL_RESULTS} is missing: stages are listed from {RUN_STATE}, without metrics or gates")
    for name, entry in state.get("stages", {}).items():
        if name not in latest:
            latest[name] = {"stage": name, "kind": entry.get("table", {}).get("kind", "?"),
                            "finished": entry.get("finished"), "metrics": None, "gates": [], "finishes": 0,
                            **({"skipped": entry["skipped"]} if entry.get("skipped") else {})}
    return list(latest.values())


def training_log(path: Path) -> list[dict]:
    return [row for _, row in read_jsonl(path) if row.get("event") in ("train", "eval")]


def load_run(directory: str | Path) -> dict:
    """Everything the page shows, as plain records (see the module docstring)."""
    run = Path(directory)
    state = read_json(run / RUN_STATE)
    notes: list[str] = []
    stages = stage_rows(run, state, notes)
    out = {"name": run.name, "recipe": state.get("recipe"), "notes": notes, "stages": stages,
           "evals": [], "mines": [], "compares": [], "votes": [], "curricula": [], "training": []}
    for stage in stages:
        name, kind = stage["stage"], stage["kind"]
        path = run / name / NEEDS[kind] if kind in NEEDS and not stage.get("skipped") else None
        if path is None:
            continue
        if not path.is_file() or (kind == "eval" and not read_jsonl(path)):
            notes.append(f"stage {name} ({kind}): no {path.name} with results in {path.parent}")
        elif kind == "eval":
            out["evals"].append({"stage": name, "report": build_report(load_rows(path.parent))})
        elif kind == "mine":
            offenders = path.parent / "contamination.jsonl"
            out["mines"].append({"stage": name, **read_json(path),
                                 "offenders": [r for _, r in read_jsonl(offenders)] if offenders.is_file() else []})
        elif kind == "compare":
            out["compares"].append({"stage": name, **read_json(path)})
        elif kind == "curriculum":
            out["curricula"].append(read_json(path))
        elif kind == "vote":
            out["votes"].append({"stage": name, **{k: v for k, v in read_json(path).items() if k != "tasks"}})
        else:
            out["training"].append({"stage": name, "kind": kind, "records": training_log(path)})
    return out


def write_run_report(directory: str | Path, title: str | None = None) -> Path:
    """RUN/report.html and its figures in RUN/report/; returns the page's path."""
    from crucible.report.run_page import render_page
    from crucible.report.run_plots import write_figures

    run = Path(directory)
    record = load_run(run)
    figures = write_figures(record, run / FIGURES)
    page = run / PAGE
    atomic_write(page, render_page(record, {k: f"{FIGURES}/{v}" for k, v in figures.items()}, title))
    return page
