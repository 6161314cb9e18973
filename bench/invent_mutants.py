"""What `crucible invent`'s mutation check says about human-written tests: HumanEval's own.

Each HumanEval problem is checked as `crucible invent` checks a model-written one
(`crucible.improve.invent`: its canonical solution and up to 12 mutants of it graded against its
test in the sandbox, through HumanEval's judge), so the figures are a yardstick for invented
problems: how many mutants a real solution gives, how often real tests kill one, the mutation
score real tests reach (equivalent mutants keep it below 1), and the sandbox time per problem.

Prints mutants per problem, the share of problems whose tests kill a mutant (Wilson 95%), the mean
mutation score (t 95%) and seconds per problem. Not covered: the model side (sampling time).

usage: python bench/invent_mutants.py [--limit N] [--workers W]
"""

from __future__ import annotations

import argparse
import ast
import os
import time


def main() -> None:
    from crucible.eval.runs import mean_interval
    from crucible.grade.humaneval import grade
    from crucible.grade.humaneval.suite import LIMITS
    from crucible.improve.invent import Problem, Rejected, grading_jobs, verdict_row
    from crucible.metrics.proportion import wilson_interval
    from crucible.tasks.humaneval import load_problems

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=164, help="the first N HumanEval problems (default all)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    problems, jobs, skipped = {}, [], 0
    for index, row in enumerate(list(load_problems().values())[:args.limit]):
        module = ast.parse(row["prompt"] + row["canonical_solution"])
        function = next(f for f in module.body if isinstance(f, ast.FunctionDef) and f.name == row["entry_point"])
        if ast.get_docstring(function) is None:
            skipped += 1  # invent's shape needs a docstring first
            continue
        problem = Problem(row["entry_point"], row["prompt"], row["canonical_solution"], row["test"], function)
        problem_jobs, made = grading_jobs(index, problem)
        problems[index] = (problem, made)
        jobs += problem_jobs
    start = time.monotonic()
    verdicts = dict(grade(jobs, args.workers, LIMITS))
    wall = time.monotonic() - start

    scores, reasons = [], {}
    for index, (problem, made) in problems.items():
        try:
            row = verdict_row(index, problem, made, verdicts)
        except Rejected as e:
            reasons[e.reason] = reasons.get(e.reason, 0) + 1
            continue
        if row is not None:
            scores.append(row["mutation_score"])
    n = len(problems)
    mutants_per = mean_interval([len(m) for _, m in problems.values()])
    lo, hi = wilson_interval(len(scores), n)
    score = mean_interval(scores)
    print(f"{n} HumanEval problems ({skipped} without a docstring skipped), {len(jobs)} gradings, "
          f"{args.workers} workers, {wall:.1f} s: {wall / n:.2f} s per problem")
    print(f"mutants per problem: {mutants_per['mean']:.1f} ± {mutants_per['std']:.1f} (sd; capped at 12)")
    print(f"tests kill a mutant (kept by invent's rule): {len(scores)}/{n} = {100 * len(scores) / n:.1f}% "
          f"[{100 * lo:.1f}, {100 * hi:.1f}]; not kept: {reasons}")
    print(f"mean mutation score of those: {score['mean']:.3f} [{score['ci'][0]:.3f}, {score['ci'][1]:.3f}]")


if __name__ == "__main__":
    main()
