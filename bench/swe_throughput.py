"""SWE-style instances built per minute and graded per minute, on this machine's cores.

Build: `crucible swe build` from the stdlib source (bug injection, each candidate's tests run twice in
the sandbox) into a fresh directory, --workers candidates at a time; the rate counts kept instances
over the whole build (clean baselines and rejected candidates included: that is what a user waits
for). Grade: the gold patches of the built set, then the empty patch as the comparison (apply and
test skipped: the cost of the harness alone), each --repeats times into fresh directories. Rates are
the mean with the min-max over repeats (the machine is shared: the spread is the honest interval).

    python bench/swe_throughput.py [--n 12] [--workers 2] [--repeats 3]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
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
        for name, patch_of in (("gold patch", lambda i: i["patch"]), ("empty patch", lambda i: "")):
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


if __name__ == "__main__":
    main()
