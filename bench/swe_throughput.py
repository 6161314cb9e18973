"""SWE-style instances built per minute and graded per minute, on this machine's cores.

Build: `crucible swe build` from the stdlib source (bug injection, each candidate's tests run twice in
the sandbox) into a fresh directory, --workers candidates at a time; the rate counts kept instances
over the whole build (clean baselines and rejected candidates included: that is what a user waits
for). Grade: the gold patches of the built set, then the empty patch as the comparison (apply and
test skipped: the cost of the harness alone), each --repeats times into fresh directories. Agent
runs (`crucible swe run`'s `run_agent`: agent loops, then grading) with the scripted agent model
(`crucible.testing.ScriptedAgentServer`: look, a format error, the gold fix, the tests, submit) on
the same instances, --workers at a time: locally (threads), then through Ray on a throw-away
one-node cluster of --workers CPUs (one Ray task per agent run and per grading job, the model on a
replica actor); one warm-up run of each first (Ray workers started, modules imported). Rates are
the mean with the min-max over repeats (the machine is shared: the spread is the honest interval).

    python bench/swe_throughput.py [--n 12] [--workers 2] [--repeats 3] [--skip-grade]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def rate(count: int, seconds: list[float]) -> str:
    per_min = [60 * count / s for s in seconds]
    return f"{statistics.fmean(per_min):.1f}/min (min-max {min(per_min):.1f}-{max(per_min):.1f}, {len(per_min)} runs)"


def agent_rates(root: Path, instances: list[dict], workers: int, repeats: int, tmp: Path) -> None:
    """swe run instances/min with the scripted agent, local vs Ray (1 node), same instances."""
    from crucible.generate.registry import load_backend
    from crucible.scale import connect
    from crucible.scale.fanout import fan_out
    from crucible.scale.sampling import RayBackend
    from crucible.swe.agent import AgentConfig
    from crucible.swe.runs import run_agent
    from crucible.testing import LocalCluster, ScriptedAgentServer, scripted_replies

    scripts = {i["instance_id"]: scripted_replies(i, submit=True) for i in instances}
    config = AgentConfig(step_limit=8)

    def timed(backend, name: str, fan) -> tuple[list[float], list[int]]:
        run_agent(backend, root, instances[:1], tmp / f"warm-{name}", config, spec=server.spec, workers=workers,
                  progress=False, fan=fan)
        times, resolved = [], []
        for r in range(repeats):
            start = time.perf_counter()
            report = run_agent(backend, root, instances, tmp / f"agent-{name}-{r}", config, spec=server.spec,
                               workers=workers, progress=False, fan=fan)
            times.append(time.perf_counter() - start)
            resolved.append(report["runs"][0]["resolved"])
        return times, resolved

    with ScriptedAgentServer(instances, scripts) as server:
        backend = load_backend(server.spec)
        local, local_resolved = timed(backend, "local", None)
        backend.close()
        start = time.perf_counter()
        with LocalCluster(nodes=1, cpus_per_node=workers) as cluster, connect(cluster.address):
            up = time.perf_counter() - start
            backend = RayBackend(server.spec)
            remote, remote_resolved = timed(backend, "ray", fan_out)
            backend.close()
    n = len(instances)
    print(f"swe run (scripted agent, local, {workers} workers): {n} instances, resolved {local_resolved}: "
          f"{rate(n, local)}")
    print(f"swe run (scripted agent, Ray 1 node x {workers} CPUs): {n} instances, resolved {remote_resolved}: "
          f"{rate(n, remote)} (cluster start {up:.0f} s, not counted)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-grade", action="store_true", help="only the build and the agent runs")
    args = ap.parse_args()

    from crucible.swe.build import build
    from crucible.swe.grade import grade_predictions
    from crucible.swe.instances import load
    from crucible.swe.sources import stdlib_sources

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "instances"
        start = time.perf_counter()
        counts = build(root, stdlib_sources(), args.n, seed=0, workers=args.workers, progress=False)
        build_s = time.perf_counter() - start
        instances = load(root)
        print(f"build: {counts['kept']} instances ({counts['tried']} candidates validated, {counts['rejected']} rejected)"
              f" in {build_s:.1f}s = {60 * counts['kept'] / build_s:.1f} instances/min "
              f"(workers {args.workers}; one build, no repeat)")
        for name, patch_of in () if args.skip_grade else (("gold patch", lambda i: i["patch"]),
                                                          ("empty patch", lambda i: "")):
            times = []
            for r in range(args.repeats):
                preds = {i["instance_id"]: {"instance_id": i["instance_id"], "model_patch": patch_of(i)}
                         for i in instances}
                start = time.perf_counter()
                summary = grade_predictions(root, instances, preds, Path(tmp) / f"grade-{name}-{r}",
                                            workers=args.workers, progress=False)
                times.append(time.perf_counter() - start)
            print(f"grade ({name}): {len(instances)} instances, resolved {summary['resolved_instances']}: "
                  f"{rate(len(instances), times)}")
        agent_rates(root, instances, args.workers, args.repeats, Path(tmp))


if __name__ == "__main__":
    main()
