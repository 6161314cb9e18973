"""Resumable grading of a samples file against a suite, and the summary it leaves behind.

`DIR/results.jsonl` is append-only: one row per sample, flushed and fsynced as it is graded, keyed by
(task_id, language, sample index). A killed run re-run with the same DIR grades only the missing
rows; a torn last line (SIGKILL mid-write) is dropped and regraded. Identical programs (the suite's
`program_key`) run once, across runs too. The summary is recomputed from the rows each time, so an
interrupted-then-resumed run and an uninterrupted one give the same summary.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from crucible.cli import UsageError
from crucible.grade import INFRA, Suite, Verdict
from crucible.metrics import pass_at_k_table, task_counts
from crucible.sandbox.pyenv import claim_results_dir

RESULTS = "results.jsonl"
SUMMARY = "summary.json"
SUMMARY_MD = "summary.md"


def read_samples(path: str | Path, suite: Suite) -> list[dict]:
    """Read and validate every line before anything is written; bad input raises UsageError."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such samples file")
    samples: list[dict] = []
    index: Counter = Counter()
    for lineno, s in jsonl_objects(path):
        why = suite.check_sample(s)
        if why:
            raise UsageError(f"{path}:{lineno}: {why}")
        k = (s["task_id"], suite.group(s))
        s.setdefault("sample_index", index[k])
        index[k] += 1
        s["_line"] = lineno
        samples.append(s)
    return samples


def jsonl_objects(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a user's JSONL file; anything else on a
    line is a UsageError naming the file and line."""
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise UsageError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise UsageError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def row_key(task_id: str, group: str, sample_index: int) -> str:
    return f"{task_id}\x1f{group}\x1f{sample_index}"


def load_results(out: Path) -> list[dict]:
    """Rows already graded; a torn last line is cut off so the file stays appendable."""
    path = out / RESULTS
    if not path.exists():
        return []
    rows, good_bytes = [], 0
    with path.open("rb") as f:
        for raw in f:
            try:
                rows.append(json.loads(raw))
            except (json.JSONDecodeError, UnicodeDecodeError):
                break
            if not raw.endswith(b"\n"):
                rows.pop()
                break
            good_bytes += len(raw)
    if good_bytes != path.stat().st_size:
        with path.open("r+b") as f:
            f.truncate(good_bytes)
    return rows


def grade_samples(suite: Suite, samples: list[dict], out: str | Path, *, ks=(1, 10, 100),
                  workers: int | None = None, progress: bool = True) -> dict:
    """Grade what is missing from `out/results.jsonl`, then write summary.json and summary.md."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    python_env = getattr(suite, "python_env", None)  # crucible.sandbox.pyenv: opt-in packages
    claim_results_dir(out, python_env)  # never mixes envs in one results dir; records the env used
    workers = workers or os.cpu_count() or 1
    rows = load_results(out)
    done = {row_key(r["task_id"], r["language"], r["sample_index"]) for r in rows}
    known: dict[str, Verdict] = {r["program_key"]: Verdict(r["status"], r.get("detail", ""))
                                 for r in rows if r.get("program_key") and r["status"] not in INFRA}
    todo = [s for s in samples if row_key(s["task_id"], suite.group(s), s["sample_index"]) not in done]

    by_program: dict[str, list[dict]] = defaultdict(list)
    for s in todo:
        by_program[suite.program_key(s)].append(s)
    bar = tqdm(total=len(todo), desc=f"grading {suite.name}", unit="sample", disable=not progress,
               dynamic_ncols=True)
    with (out / RESULTS).open("a", encoding="utf-8") as f:
        def emit(key: str, verdict: Verdict, executed: bool):
            for s in by_program[key]:
                row = {"task_id": s["task_id"], "language": suite.group(s),
                       "sample_index": s["sample_index"], "status": verdict.status,
                       "passed": verdict.passed, "detail": verdict.detail[:300],
                       "program_key": key, "executed": executed}
                row.update({k: v for k, v in s.items()
                            if k not in row and not k.startswith("_") and k != "completion"})
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                executed = False
            f.flush()
            os.fsync(f.fileno())
            bar.update(len(by_program[key]))

        to_run = []
        for key, group in by_program.items():
            if key in known:
                emit(key, known[key], False)
            else:
                to_run.append((key, group[0]))
        for key, verdict in suite.grade(to_run, workers):
            emit(key, verdict, True)
    bar.close()
    summary = summarize(suite.name, load_results(out), ks)
    if python_env is not None:
        summary["python_env"] = python_env.record()
    write_summary(out, summary)
    return summary


def program_hash(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:32]


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


def write_summary(out: Path, summary: dict) -> None:
    _atomic_write(out / SUMMARY, json.dumps(summary, indent=2) + "\n")
    _atomic_write(out / SUMMARY_MD, render_markdown(summary))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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
