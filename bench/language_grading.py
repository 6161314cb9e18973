"""Per-language grading speed: samples/s for N copies of one correct program and for N distinct
programs, with the build cache's hit rate, plus the cost of a cached re-grade vs just running it.

For each language, with a fresh build cache (a temp dir):
- distinct: N programs that differ by a constant (distinct sources: N builds, hit rate 0%);
- identical: N copies of one program through `run_program` (1 build, N-1 cache hits): each copy still
  runs, so this is the cost of re-grading a compiled program;
- run only: the same prebuilt binary run N times straight through `crucible.sandbox.run` (no cache
  lookup, no copy): the floor that a cache hit is compared with (target: hit <= run + small overhead);
- grader: N identical samples through `grade_samples` (the runner executes identical programs once).

    python bench/language_grading.py [--n 100] [--workers 2] [--languages c,rust,...] [--json out.json]

Numbers are wall-clock on whatever else the machine is doing; each rate is the mean over the N samples
of one run (no repeats: compiling 100 Kotlin programs takes minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# A correct program printing the sum of i*i for i in 1..K; {K} makes distinct sources.
TEMPLATES = {
    "python": "print(sum(i * i for i in range(1, {K} + 1)))\n",
    "javascript": "let s = 0;\nfor (let i = 1; i <= {K}; i++) s += i * i;\nconsole.log(s);\n",
    "typescript": "let s: number = 0;\nfor (let i = 1; i <= {K}; i++) s += i * i;\nconsole.log(s);\n",
    "go": 'package main\n\nimport "fmt"\n\nfunc main() {\n\ts := 0\n\tfor i := 1; i <= {K}; i++ {\n\t\ts += i * i\n'
          '\t}\n\tfmt.Println(s)\n}\n',
    "rust": "fn main() {\n    let s: u64 = (1..={K}u64).map(|i| i * i).sum();\n    println!(\"{}\", s);\n}\n",
    "kotlin": "fun main() {\n    println((1L..{K}L).map { it * it }.sum())\n}\n",
    "ocaml": "let () =\n  let s = ref 0 in\n  for i = 1 to {K} do s := !s + i * i done;\n  Printf.printf \"%d\\n\" !s\n",
    "zig": 'const std = @import("std");\n\npub fn main() !void {\n    var s: u64 = 0;\n    var i: u64 = 1;\n'
           '    while (i <= {K}) : (i += 1) s += i * i;\n    try std.io.getStdOut().writer().print("{d}\\n", .{s});\n}\n',
    "c": "#include <stdio.h>\n\nint main(void) {\n    long s = 0;\n    for (long i = 1; i <= {K}; i++) s += i * i;\n"
         "    printf(\"%ld\\n\", s);\n    return 0;\n}\n",
    "cpp": "#include <bits/stdc++.h>\n\nint main() {\n    long s = 0;\n    for (long i = 1; i <= {K}; i++) s += i * i;\n"
           "    std::cout << s << std::endl;\n}\n",
    "java": "public class Main {\n    public static void main(String[] args) {\n        long s = 0;\n"
            "        for (long i = 1; i <= {K}; i++) s += i * i;\n        System.out.println(s);\n    }\n}\n",
}


def program(lang: str, k: int) -> str:
    return TEMPLATES[lang].replace("{K}", str(k))


def expected(k: int) -> str:
    return str(k * (k + 1) * (2 * k + 1) // 6)


LATENCIES: list[float] = []  # per-sample wall seconds of the last timed_map


def timed_map(fn, items, workers: int) -> tuple[float, list]:
    def one(item):
        t = time.perf_counter()
        r = fn(item)
        return r, time.perf_counter() - t

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        pairs = list(pool.map(one, items))
    LATENCIES[:] = [dt for _, dt in pairs]
    return time.perf_counter() - start, [r for r, _ in pairs]


def spread() -> dict:
    """Per-sample latency in ms: median and the 10th-90th percentile range (the run's own spread)."""
    import numpy as np

    ms = 1000 * np.asarray(LATENCIES)
    return {"median_ms": float(np.median(ms)), "p10_ms": float(np.percentile(ms, 10)),
            "p90_ms": float(np.percentile(ms, 90))}


def bench_language(lang: str, n: int, workers: int) -> dict:
    from crucible.languages import build, get, run_program
    from crucible.sandbox import Limits, run

    limits = Limits(timeout_s=10)
    language = get(lang)
    row = {"language": lang, "version": language.version(), "n": n, "compiled": language.compiled}

    build.reset_stats()
    ks = [1000 + i for i in range(n)]
    secs, outs = timed_map(lambda k: run_program(lang, program(lang, k), limits=limits), ks, workers)
    bad = [o.status for o, k in zip(outs, ks) if o.stdout.strip() != expected(k)]
    s = build.stats()
    row["distinct"] = {"samples_per_s": n / secs, "ms_per_sample": 1000 * secs / n, "hit_rate": s["hit_rate"],
                       "builds": s["builds"], "failed": len(bad), **spread()}

    build.reset_stats()
    src = program(lang, 999)
    secs, outs = timed_map(lambda _: run_program(lang, src, limits=limits), range(n), workers)
    s = build.stats()
    row["identical"] = {"samples_per_s": n / secs, "ms_per_sample": 1000 * secs / n, "hit_rate": s["hit_rate"],
                        "builds": s["builds"], "failed": sum(o.stdout.strip() != expected(999) for o in outs),
                        **spread()}

    # Cached re-grade vs running the prebuilt artifact directly (interpreted languages: same thing).
    if language.compiled:
        build.reset_stats()
        secs_hit, _ = timed_map(lambda _: run_program(lang, src, limits=limits), range(n), workers)
        hit_spread = spread()
        recipe = _recipe(lang, src)
        key = build.build_key(lang, language.version(), recipe, src)
        entry = build.cache_root() / key[:2] / key / "artifacts"
        argv = list(recipe.execute)
        heap = max(64, (limits.memory_mb or 1024) // 2)
        argv = [a.replace("{heap_mb}", str(heap)) for a in argv]
        run_limits = Limits(timeout_s=10, memory_mb=None if recipe.own_heap_cap else limits.memory_mb,
                            max_procs=max(limits.max_procs, recipe.min_procs))

        def raw(_):
            work = tempfile.mkdtemp(prefix="bench-run-")
            shutil.copytree(entry, work, dirs_exist_ok=True)
            try:
                return run(argv, limits=run_limits, workdir=work, ro_binds=list(recipe.ro_binds), env=recipe.run_env)
            finally:
                shutil.rmtree(work, ignore_errors=True)

        secs_raw, outs = timed_map(raw, range(n), workers)
        assert all(o.stdout.strip() == expected(999) for o in outs), outs[0]
        row["regrade_ms"] = 1000 * secs_hit / n
        row["run_only_ms"] = 1000 * secs_raw / n
        row["regrade_spread"], row["run_only_spread"] = hit_spread, spread()
    row["grader"] = grader_identical(lang, src, n, workers)
    return row


def _recipe(lang: str, source: str):
    import importlib

    mod = importlib.import_module(f"crucible.languages.{lang}")
    if hasattr(mod, "RECIPE"):
        return mod.RECIPE
    if lang == "java":
        return mod.recipe(mod.main_class(source))
    return mod.recipe()


def grader_identical(lang: str, src: str, n: int, workers: int) -> dict:
    """N identical samples through the resumable grader: executed once, the rest reuse the verdict."""
    from crucible.eval.pipeline import evaluate_samples
    from crucible.eval.suites import load_suite

    with tempfile.TemporaryDirectory() as d:
        tasks = Path(d) / "tasks.jsonl"
        tasks.write_text(json.dumps({"id": "sq", "prompt": "sum of squares", "answer": expected(999),
                                     "difficulty": "easy"}) + "\n")
        suite, _ = load_suite("puzzles", tasks_file=str(tasks), language=lang)
        samples = [{"task_id": "sq", "language": lang, "completion": src, "sample_index": i} for i in range(n)]
        start = time.perf_counter()
        summary = evaluate_samples(suite, samples, Path(d) / "out", ks=[1], workers=workers, progress=False)
        secs = time.perf_counter() - start
    return {"samples_per_s": n / secs, "executed": summary["executed"], "pass@1": summary["pass@k"]["1"]}


def _ms(sp: dict) -> str:
    return f"{sp['median_ms']:.0f} [{sp['p10_ms']:.0f}–{sp['p90_ms']:.0f}]"


def markdown(rows: list[dict]) -> str:
    lines = ["Per-sample latency: median [10th–90th percentile] ms of the N samples (2 workers, so a rate is "
             "about 2000 / median).", "",
             "| language | toolchain | distinct: samples/s | distinct: ms/sample | builds | identical: samples/s | "
             "identical: ms/sample | hit rate | cached re-grade ms | run-only ms | grader, identical: samples/s "
             "(executed) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        d, i, g = r["distinct"], r["identical"], r["grader"]
        regrade = _ms(r["regrade_spread"]) if "regrade_spread" in r else "—"
        run_only = _ms(r["run_only_spread"]) if "run_only_spread" in r else "—"
        hit = f"{100 * i['hit_rate']:.0f}%" if r["compiled"] else "—"
        lines.append(f"| {r['language']} | {r['version']} | {d['samples_per_s']:.1f} | {_ms(d)} | {d['builds']} | "
                     f"{i['samples_per_s']:.1f} | {_ms(i)} | {hit} | {regrade} | {run_only} | "
                     f"{g['samples_per_s']:.0f} ({g['executed']}) |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--languages", default=",".join(TEMPLATES))
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args()
    cache = tempfile.mkdtemp(prefix="bench-builds-")
    os.environ["CRUCIBLE_BUILD_CACHE"] = cache  # cold cache: the first build of each program is real
    rows = []
    try:
        for lang in args.languages.split(","):
            t = time.perf_counter()
            rows.append(bench_language(lang.strip(), args.n, args.workers))
            print(f"{lang}: {time.perf_counter() - t:.0f}s", file=sys.stderr, flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
