"""Grading a task-world program on its 6 hidden tests: one sandbox for all inputs (the forked-driver
batch of `crucible.languages.inputs`) vs one sandbox per input, side by side, and the ratio.

    python bench/world_grading.py [--repeats 8]

Medians over the repeats, wall-clock, on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import statistics
import time

from crucible.languages import run_program
from crucible.languages.inputs import run_on_inputs
from crucible.sandbox import Limits
from crucible.tasks.world import make_task


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=8)
    args = p.parse_args()
    task = make_task(("reverse", "upper", "dedupe"))
    inputs = [x + "\n" for x, _ in task.tests]
    limits = Limits(timeout_s=2)
    batched, separate = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        outcomes = run_on_inputs("python", task.reference, inputs, limits=limits)
        batched.append(time.perf_counter() - start)
        assert [o.stdout.strip() for o in outcomes] == [want for _, want in task.tests]
        start = time.perf_counter()
        for text in inputs:
            run_program("python", task.reference, stdin=text, limits=limits)
        separate.append(time.perf_counter() - start)
    b, s = statistics.median(batched), statistics.median(separate)
    print(f"{len(inputs)} inputs: one sandbox {1000 * b:.0f} ms, one per input {1000 * s:.0f} ms "
          f"(median of {args.repeats}): {s / b:.1f}x")


if __name__ == "__main__":
    main()
