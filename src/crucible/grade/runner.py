"""Resumable grading into a results file: `verdicts` plus resume and files, nothing else.

`DIR/results.jsonl` is append-only: one row per sample, flushed and fsynced as it is graded, keyed by
(task_id, language, sample index). A killed run re-run with the same DIR grades only the missing
rows; a torn last line (SIGKILL mid-write) is cut off and regraded (`crucible.io`). Identical
programs (the suite's `program_key`) run once, across runs too: a verdict already in the file is
reused. Summaries are computed from the rows by `crucible.eval.summary`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from tqdm import tqdm

from crucible.grade import INFRA, SampleError, Suite, Verdict
from crucible.grade.verdicts import verdicts
from crucible.io import appending, read_jsonl
from crucible.sandbox.pyenv import claim_results_dir

RESULTS = "results.jsonl"


def read_samples(path: str | Path, suite: Suite) -> list[dict]:
    """Read and validate every line before anything is written (SampleError / JsonlError otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise SampleError(f"{path}: no such samples file")
    samples: list[dict] = []
    index: Counter = Counter()
    for lineno, s in read_jsonl(path):
        why = suite.check_sample(s)
        if why:
            raise SampleError(f"{path}:{lineno}: {why}")
        k = (s["task_id"], suite.group(s))
        s.setdefault("sample_index", index[k])
        index[k] += 1
        s["_line"] = lineno
        samples.append(s)
    return samples


def row_key(task_id: str, group: str, sample_index: int) -> str:
    return f"{task_id}\x1f{group}\x1f{sample_index}"


def load_results(out: Path) -> list[dict]:
    """Rows already graded; a torn last line is cut off so the file stays appendable."""
    path = Path(out) / RESULTS
    return [row for _, row in read_jsonl(path, repair=True)] if path.exists() else []


def grade_samples(suite: Suite, samples: list[dict], out: str | Path, *, workers: int | None = None,
                  progress: bool = True, pool=None) -> list[dict]:
    """Grade what is missing from `out/results.jsonl`; return all its rows."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    python_env = getattr(suite, "python_env", None)  # crucible.sandbox.pyenv: opt-in packages
    claim_results_dir(out, python_env)  # never mixes envs in one results dir; records the env used
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
    with appending(out / RESULTS) as results:
        def emit(key: str, verdict: Verdict, executed: bool):
            rows = []
            for s in by_program[key]:
                row = {"task_id": s["task_id"], "language": suite.group(s),
                       "sample_index": s["sample_index"], "status": verdict.status,
                       "passed": verdict.passed, "detail": verdict.detail[:300],
                       "program_key": key, "executed": executed}
                row.update({k: v for k, v in s.items()
                            if k not in row and not k.startswith("_") and k != "completion"})
                rows.append(row)
                executed = False
            results.write(*rows)
            bar.update(len(rows))

        for key, group in by_program.items():
            if key in known:
                emit(key, known[key], False)
        to_run = [group[0] for key, group in by_program.items() if key not in known]
        for key, verdict in verdicts(suite, to_run, workers=workers, pool=pool):
            emit(key, verdict, True)
    bar.close()
    return load_results(out)
