"""`make demo`: what crucible does, in a minute on two cores. A plain sequence of steps.

1. Reference self-check: HumanEval's 164 canonical solutions, graded in the sandbox, must all pass.
2. A small bundled samples file (demo_data/humaneval_samples.jsonl: right, wrong and hostile
   completions) is graded; the summary table and each sample's verdict are printed.

Results go to a fresh temporary directory (printed), so every run grades from scratch.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from crucible.cli import main as crucible

DEMO_SAMPLES = Path(__file__).parent / "demo_data" / "humaneval_samples.jsonl"


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def run(argv: list[str]) -> None:
    print("$ crucible " + " ".join(argv), flush=True)
    start = time.perf_counter()
    rc = crucible(argv)
    if rc != 0:
        sys.exit(f"demo step failed (exit code {rc})")
    print(f"({time.perf_counter() - start:.1f} s)")


def main() -> int:
    out = Path(tempfile.mkdtemp(prefix="crucible-demo-"))
    print(f"results under {out}")

    step("1. reference self-check: the 164 canonical HumanEval solutions must all pass")
    run(["eval", "humaneval", "--reference", "--out", str(out / "reference"), "--k", "1", "--no-progress"])
    summary = json.loads((out / "reference" / "summary.json").read_text())
    if summary["status_counts"] != {"pass": 164}:
        sys.exit(f"self-check failed: {summary['status_counts']}")

    step("2. grade right, wrong and hostile completions (none of the hostile ones may pass)")
    run(["eval", "humaneval", "--samples", str(DEMO_SAMPLES), "--out", str(out / "samples"), "--k", "1",
         "--no-progress"])
    rows = [json.loads(line) for line in (out / "samples" / "results.jsonl").read_text().splitlines()]
    rows.sort(key=lambda r: (int(r["task_id"].split("/")[1]), r["sample_index"]))
    print(f"{'task':<14}{'verdict':<15}{'sample':<54}detail")
    for r in rows:
        print(f"{r['task_id']:<14}{r['status']:<15}{r.get('note', ''):<54}{r['detail'][:70]}")
    cheats = [r for r in rows if r.get("note", "").startswith("hostile") and r["passed"]]
    if cheats:
        sys.exit(f"a hostile sample passed: {cheats}")
    print("\nno hostile sample passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
