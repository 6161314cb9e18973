"""Grading through Ray vs locally, on this machine: samples/s, the cost of one Ray task, and a paper
estimate of a large multi-language evaluation on N nodes.

Same programs each way: the 164 HumanEval canonical solutions x COPIES, each copy made distinct by
a trailing comment (identical programs would run once). Graded in memory (`verdicts`, no files):
- local, 1 worker and 2 workers (this machine has 2 cores);
- through Ray on a throw-away local cluster (`crucible.testing.LocalCluster`) of 1 and of 2 nodes,
  one CPU each, batches of `--batch` programs per Ray task.
Then the overhead of a Ray task alone (a no-op fanned out `--noop` times), and the estimate.

    python bench/ray_grading.py [--copies 2] [--repeats 3] [--batch 16] [--noop 200]

What 2 cores cannot show: every "node" shares the same two cores (and the machine with other
work), so Ray on 2 nodes can at best match local grading with 2 workers; the figures measure
Ray's overhead, not its scaling. Scaling is estimated on paper from measured per-sample costs.
Rates are the mean with [min, max] over repeats (the machine is shared: the spread is the honest
interval).
"""

from __future__ import annotations

import argparse
import time

# Distinct-program grading cost per language, ms per sample per worker (docs/languages.md, "distinct:
# ms/sample", median, 2 workers on the 2-core lab box under load): what a sample costs on one core.
MS_PER_SAMPLE = {"python": 94, "javascript": 274, "typescript": 858, "go": 743, "rust": 480, "kotlin": 5588,
                 "ocaml": 762, "zig": 2971, "c": 205, "cpp": 709, "java": 1568}


def programs(copies: int) -> list[dict]:
    from crucible.tasks.humaneval import load_problems

    return [{"task_id": p["task_id"], "completion": p["canonical_solution"] + f"\n# copy {i}\n"}
            for p in load_problems().values() for i in range(copies)]


def timed_verdicts(suite, samples, workers=None) -> tuple[float, int]:
    from crucible.grade.verdicts import verdicts

    start = time.perf_counter()
    passed = sum(v.passed for _, v in verdicts(suite, samples, workers=workers))
    return time.perf_counter() - start, passed


def spread(xs: list[float]) -> str:
    return f"{sum(xs) / len(xs):.1f} [{min(xs):.1f}, {max(xs):.1f}]"


def rates(run, n: int, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        seconds, passed = run()
        assert passed == n, f"{passed}/{n} passed: the bench graded something wrong"
        out.append(n / seconds)
    return out


def noop_ms(count: int) -> float:
    """Wall ms per Ray task for a function that does nothing, `count` tasks fanned out."""
    from crucible.scale.fanout import fan_out
    from crucible.sandbox import sandbox_problem

    list(fan_out(sandbox_problem, [True] * 8))  # warm the workers
    start = time.perf_counter()
    list(fan_out(sandbox_problem, [True] * count))
    return 1000 * (time.perf_counter() - start) / count


def estimate(samples: int, nodes: list[int], cores: int, task_ms: float, batch: int) -> list[str]:
    per_language = samples / len(MS_PER_SAMPLE)
    core_s = sum(per_language * ms / 1000 for ms in MS_PER_SAMPLE.values())
    overhead_s = samples / batch * task_ms / 1000  # spent by the driver; tasks overlap on the nodes
    lines = [f"paper estimate: {samples} samples, {len(MS_PER_SAMPLE)} languages x {per_language:.0f}, "
             f"{core_s / 3600:.1f} core-hours of grading (distinct programs, per-sample cost measured "
             f"under load on the lab box), + {overhead_s:.0f} s of Ray scheduling ({task_ms:.1f} ms x "
             f"{samples // batch} tasks)"]
    for n in nodes:
        wall = core_s / (n * cores) + overhead_s
        lines.append(f"  {n:>3} nodes x {cores} cores: {wall / 60:7.1f} min")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--noop", type=int, default=200)
    args = ap.parse_args()

    from crucible.eval.suites import load_suite
    from crucible.scale import connect
    from crucible.scale.grading import RayGrading
    from crucible.testing import LocalCluster

    suite, _ = load_suite("humaneval")
    samples = programs(args.copies)
    n = len(samples)
    print(f"{n} distinct HumanEval programs (canonical x {args.copies}), {args.repeats} repeats")
    for workers in (1, 2):
        print(f"local, {workers} worker(s): {spread(rates(lambda: timed_verdicts(suite, samples, workers), n, args.repeats))} samples/s")
    task_ms = {}
    for nodes in (1, 2):
        start = time.perf_counter()
        with LocalCluster(nodes=nodes) as cluster, connect(cluster.address):
            up = time.perf_counter() - start
            remote = RayGrading(suite, batch=args.batch)
            timed_verdicts(remote, samples[: 2 * args.batch * nodes])  # warm: workers started, modules imported
            r = rates(lambda: timed_verdicts(remote, samples), n, args.repeats)
            task_ms[nodes] = noop_ms(args.noop)
        print(f"ray, {nodes} node(s) x 1 CPU, batch {args.batch}: {spread(r)} samples/s "
              f"(cluster start {up:.0f} s, not counted); no-op Ray task: {task_ms[nodes]:.1f} ms")
    for line in estimate(100_000, [1, 4, 16, 64], 32, max(task_ms.values()), args.batch):
        print(line)


if __name__ == "__main__":
    main()
