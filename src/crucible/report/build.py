"""The numbers of a report, from the rows of a results directory (see the package docstring)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from crucible.grade import INFRA
from crucible.grade.runner import RESULTS
from crucible.io import read_jsonl
from crucible.languages.python import MISSING_MODULE
from crucible.metrics import bootstrap_ci, pass_at_k_table, task_counts

FAILURE_COLUMNS = ("pass", "wrong_answer", "compile_error", "runtime_error", "timeout", "memory", "output_limit",
                   "infra")


class ReportError(ValueError):
    """The directory holds no usable results; the message names the file (and line)."""


def load_rows(directory: str | Path) -> list[dict]:
    """The complete rows of DIR/results.jsonl (a torn last line is ignored, not repaired: a run may
    still be writing)."""
    path = Path(directory) / RESULTS
    if not path.is_file():
        raise ReportError(f"{path}: no results here (run `crucible eval ... --out {directory}` first)")
    rows = []
    for lineno, row in read_jsonl(path):
        if not {"task_id", "language", "status"} <= row.keys():
            raise ReportError(f"{path}:{lineno}: expected a results row with task_id, language, status")
        rows.append(row)
    if not rows:
        raise ReportError(f"{path}: no complete rows yet")
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
