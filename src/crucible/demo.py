"""`make demo`: a model getting better, measured honestly — offline, 2 CPU cores, about 10 minutes.

The improve loop end to end, as the shipped recipe `recipes/mission.toml` run by `crucible run`:

1. tasks: the built-in task world (`crucible.tasks.world`): "apply these string steps" programs.
   Pretraining sees every 1- and 2-step training task and a few 3-step ones (the seeds); the
   held-out 3-step tasks are never trained on, mined or seen.
2. pretrain a tiny GPT from scratch on those reference programs (a couple of minutes).
3. eval0: greedy pass@1 on the held-out 3-step tasks, graded in the sandbox.
4. mine: 4 samples at T = 1 per 3-step training task, each graded in the sandbox; distinct passing
   programs are kept (with the contamination check against the held-out tasks), and a negative
   control is made: the same programs moved to other tasks, verified to fail.
5. sft on the mined programs, then eval1 (same tasks as eval0); round 2 mines with the round-1
   model and continues training it (eval2). The control: sft from the base on the control, its eval.
6. compare: paired Δ pass@1 with a bootstrap interval and McNemar's p, base vs round 2 and base vs
   the control; gates stop the run (exit 3) if the real gain's p is not below 0.05.
7. vote: 8 samples per held-out task from the final model; vote@8 beside pass@1 and pass@8.
8. report: one HTML page for the whole run.

The closing summary prints every figure with its 95 % interval and says whether the intervals of
eval0 and eval2 overlap; the demo exits 1 when they do (its claim failed): it never hides that.

    python -m crucible.demo                 # a fresh temporary directory
    python -m crucible.demo --out runs/demo # kept; run again to resume a killed demo
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from crucible.cli import main as crucible

RECIPE = "mission"


def load(run: Path, stage: str, name: str) -> dict:
    return json.loads((run / stage / name).read_text())


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def interval(lo: float, hi: float) -> str:
    return f"[{100 * lo:.1f}, {100 * hi:.1f}]"


def summary_lines(run: Path) -> tuple[list[str], bool]:
    """The closing summary, and whether the base's and the final model's 95 % intervals are disjoint."""
    names = {"eval0": "base model", "eval1": "after round 1", "eval2": "after round 2",
             "eval_control": "negative control (1 round)"}
    evals = {stage: load(run, stage, "summary.json") for stage in names}
    gain, placebo = load(run, "gain", "compare.json"), load(run, "control_gain", "compare.json")
    vote = load(run, "vote1", "vote.json")
    disjoint = evals["eval2"]["ci"]["1"][0] > evals["eval0"]["ci"]["1"][1]
    lines = [f"held-out 3-step tasks: {evals['eval0']['n_tasks']} (never trained on or mined), greedy pass@1, "
             "95% intervals"]
    for stage, name in names.items():
        s = evals[stage]
        lines.append(f"  {name:<27} {pct(s['pass@k']['1']):>6} {interval(*s['ci']['1'])}"
                     + (f"   vs base: intervals {'do not overlap' if disjoint else 'OVERLAP'}" if stage == "eval2" else ""))
    lines.append(f"paired Δ pass@1 (crucible compare): two rounds {100 * gain['delta']:+.1f} pts {interval(*gain['ci'])}, "
                 f"p = {gain['p_value']:.2g} ({gain['test']}); control {100 * placebo['delta']:+.1f} pts "
                 f"{interval(*placebo['ci'])}, p = {placebo['p_value']:.2g}")
    for stage in ("mine1", "mine2"):
        m = load(run, stage, "mine.json")
        lines.append(f"{stage}: {m['samples']} samples of {m['tasks']} tasks, pass@1 {pct(m['pass@1'])} "
                     f"{interval(*m['pass@1_ci'])}; {m['mined']} distinct verified programs kept, "
                     f"{m['contaminated']} dropped as contaminated"
                     + (f"; {m['control']} control examples" if m.get("control") else ""))
    lines.append(f"test-time scaling, final model, {vote['n']} samples per task at T > 0: "
                 + ", ".join(f"{name.replace('N', str(vote['n']))} {pct(vote[name]['value'])} "
                             f"{interval(*vote[name]['ci'])}" for name in ("pass@1", "vote@N", "pass@N")))
    return lines, disjoint


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[-2:]))
    p.add_argument("--out", type=Path, help="run directory (default: a fresh temporary one)")
    p.add_argument("--recipe", default=RECIPE, help="a run recipe with the mission's stage names (default: %(default)s)")
    args = p.parse_args(argv)
    run = args.out or Path(tempfile.mkdtemp(prefix="crucible-demo-"))
    print(f"the improve loop, from recipe {args.recipe}; results under {run}", flush=True)
    start = time.perf_counter()
    code = crucible(["run", args.recipe, "--out", str(run)])
    minutes = (time.perf_counter() - start) / 60
    if code != 0:
        print(f"\ndemo stopped: `crucible run` exited with code {code} after {minutes:.1f} min", file=sys.stderr)
        return code
    lines, disjoint = summary_lines(run)
    print("\n=== a model getting better\n" + "\n".join(lines))
    print(f"\nreport: {run / 'report.html'}   ({minutes:.1f} min)")
    if not disjoint:
        print("the demo's claim FAILED: the 95% intervals overlap", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
