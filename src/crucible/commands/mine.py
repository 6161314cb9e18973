"""Sample a model on a suite, verify every sample in the sandbox, keep what passed as training data.

examples:
  crucible world --levels 3 --split train --count 200 --out train3.jsonl
  crucible mine --model native:ckpt/ --suite world --tasks train3.jsonl --n 8 --temperature 1 --out runs/mine1
  crucible mine --model hf:DIR --suite puzzles --language python --n 16 --temperature 0.8 --chat --out runs/m
  crucible mine --model native:ckpt/ --suite world --tasks train3.jsonl --n 64 --out runs/big --ray auto
  crucible world --family arithmetic --levels 2 --split train --count 200 --out arith2.jsonl
  crucible mine --model native:ckpt/ --suite answers --tasks arith2.jsonl --n 8 --temperature 1 --out runs/ma

DIR gets samples.jsonl and results.jsonl (exactly `crucible eval --model`: a killed run resumes),
then mined.jsonl (distinct passing programs, or replies of answers in words, at most --per-task per
task, for `crucible sft`), pairs.jsonl (passing vs failing samples of a task, for `crucible dpo`),
contamination.jsonl (mined samples dropped because they reproduce an eval prompt or solution), with
--control control.jsonl (the mined programs moved to other tasks, verified to fail: a negative
control), and mine.json.
With --ray ADDRESS, sampling runs on model replicas and grading (the control's too) as Ray tasks on the
cluster, exactly as `crucible eval --ray` (docs/scale.md); the driver alone writes DIR.
The contamination check covers HumanEval, the puzzles, the task world's held-out tasks (of the levels
mined) and every --eval-tasks file (world tasks, or with --suite answers answer tasks, whose questions
are checked; see crucible.improve.contamination).
"""

from __future__ import annotations

import argparse

from crucible.commands import add_ray_argument, add_sampling_arguments
from crucible.eval.suites import SUITES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="SPEC", help="native:DIR, hf:DIR, vllm:DIR or openai:MODEL@URL")
    p.add_argument("--suite", required=True, choices=SUITES, help="where tasks come from")
    p.add_argument("--out", required=True, metavar="DIR", help="mining directory (resumable)")
    p.add_argument("--tasks", metavar="FILE.jsonl",
                   help="puzzles, world, answer or HumanEval-format tasks instead of the built-in ones")
    p.add_argument("--answer-mode", choices=("final", "program"),
                   help="answers: answered in words (final) or by a printing program; default: each task's mode")
    p.add_argument("--language", default="python", help="language of the tasks (puzzles, HumanEval)")
    p.add_argument("--limit", type=int, help="only the first N tasks")
    p.add_argument("--task-ids", help="only these task ids, comma-separated")
    p.add_argument("--per-task", type=int, default=4, help="at most this many mined programs per task (default 4)")
    p.add_argument("--pairs-per-task", type=int, default=4, help="at most this many DPO pairs per task (default 4)")
    p.add_argument("--eval-tasks", action="append", default=[], metavar="FILE.jsonl",
                   help="world tasks (answer tasks with --suite answers) you evaluate on: mined samples "
                        "reproducing them are dropped (repeatable)")
    p.add_argument("--control", action="store_true", help="also write control.jsonl (a negative control)")
    gen = p.add_argument_group("sampling")
    gen.add_argument("--n", type=int, default=8, help="samples per task (default 8)")
    add_sampling_arguments(gen, temperature=1.0)
    gen.add_argument("--chat", action="store_true", help="prompt with the chat template, not as a completion")
    gen.add_argument("--concurrency", type=int, default=8, help="requests in flight for openai: specs")
    p.add_argument("--workers", type=int, default=None, help="parallel graders (default: CPU count)")
    p.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="run untrusted code without bubblewrap (prints a warning on every run)")
    p.add_argument("--no-progress", action="store_true")
    add_ray_argument(p)


def main(args) -> int:
    import json
    from pathlib import Path

    from crucible.cli import UsageError
    from crucible.commands import gen_params, ray_session, usage_errors
    from crucible.commands.eval import input_errors
    from crucible.eval.suites import load_suite
    from crucible.improve import mine
    from crucible.improve.contamination import (ContaminationIndex, answer_eval_texts, bundled_eval_texts,
                                                world_eval_texts)
    from crucible.io import atomic_write
    from crucible.sandbox import require_sandbox
    from crucible.tasks import answers
    from crucible.tasks.world import load_tasks

    for name in ("per_task", "pairs_per_task", "n"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.ray or args.unsafe_no_sandbox:  # with --ray, each node checks its own sandbox
        require_sandbox(args.unsafe_no_sandbox)
    out = Path(args.out)
    with usage_errors(*input_errors(), mine.MineError), ray_session(args.ray):
        suite, _ = load_suite(args.suite, language=args.language, tasks_file=args.tasks, task_ids=args.task_ids,
                              limit=args.limit, unsafe=args.unsafe_no_sandbox, answer_mode=args.answer_mode)
        if args.ray:
            from crucible.scale.grading import RayGrading

            suite = RayGrading(suite)
        levels = {t.level for t in suite.world} if args.suite == "world" else ()
        eval_texts = bundled_eval_texts(levels)
        for path in args.eval_tasks:
            eval_texts += (answer_eval_texts(answers.load_tasks(path)) if args.suite == "answers"
                           else world_eval_texts(load_tasks(path)))
        graded = sample_and_grade(suite, args, gen_params(args))
        tasks = {(t.task_id, t.language): t for t in suite.tasks}
        passing = mine.select_passing(graded, args.per_task)
        kept, pairs, offenders = mine.decontaminate(passing, mine.select_pairs(graded, args.pairs_per_task), tasks,
                                                    ContaminationIndex(eval_texts))
        records = {
            "mined.jsonl": [mine.sft_record(s, tasks[(s["task_id"], s["language"])], args.chat) for s in kept],
            "pairs.jsonl": [mine.pair_record(c, r, tasks[(c["task_id"], c["language"])], args.chat)
                            for c, r in pairs],
            "contamination.jsonl": offenders,
        }
        if args.control:
            records["control.jsonl"] = [mine.sft_record(s, tasks[(s["task_id"], s["language"])], args.chat)
                                        for s in failing_controls(suite, mine.control_samples(kept), args.workers)]
    for name, rows in records.items():
        atomic_write(out / name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    graded_summary = json.loads((out / "summary.json").read_text())
    summary = {"suite": suite.name, "model": args.model, "n": args.n, "temperature": args.temperature,
               "tasks": len(suite.tasks), "samples": len(graded),
               "passing_samples": sum(s["passed"] for s in graded),
               "tasks_with_a_pass": len({s["task_id"] for s in graded if s["passed"]}),
               "pass@1": graded_summary["pass@k"]["1"], "pass@1_ci": graded_summary["ci"]["1"],
               "distinct_passing_kept": len(passing), "contaminated": len(offenders),
               "mined": len(kept), "pairs": len(pairs), "control": len(records.get("control.jsonl", []))}
    atomic_write(out / "mine.json", json.dumps(summary, indent=2) + "\n")
    lo, hi = summary["pass@1_ci"]
    print(f"{summary['samples']} samples of {summary['tasks']} tasks: pass@1 {100 * summary['pass@1']:.1f}% "
          f"[{100 * lo:.1f}, {100 * hi:.1f}], {summary['tasks_with_a_pass']} tasks with a passing sample\n"
          f"mined {summary['mined']} programs (distinct passing {summary['distinct_passing_kept']}, "
          f"{summary['contaminated']} dropped as contaminated), {summary['pairs']} pairs"
          + (f", {summary['control']} control examples" if args.control else "") + f" -> {out}")
    return 0


def sample_and_grade(suite, args, params) -> list[dict]:
    """Sample args.model into args.out and grade (crucible eval's pipeline: resumable), then the
    samples in scope with their verdicts."""
    from pathlib import Path

    from crucible.eval.pipeline import check_model_settings, evaluate_model
    from crucible.eval.settings import SAMPLES
    from crucible.generate.registry import load_backend
    from crucible.grade.runner import load_results
    from crucible.improve.mine import join_verdicts
    from crucible.io import read_jsonl

    check_model_settings(args.out, args.model, params, args.chat, n=args.n)
    options = {"concurrency": args.concurrency} if args.model.startswith("openai:") else {}
    if args.ray:
        from crucible.scale.sampling import RayBackend

        backend = RayBackend(args.model, options=options)
    else:
        backend = load_backend(args.model, **options)
    try:
        evaluate_model(suite, backend, args.out, n=args.n, params=params, chat=args.chat, ks=[1],
                       workers=args.workers, progress=not args.no_progress)
    finally:
        backend.close()
    out = Path(args.out)
    scope = {t.task_id for t in suite.tasks}
    samples = [s for _, s in read_jsonl(out / SAMPLES) if s["task_id"] in scope and s["sample_index"] < args.n]
    return join_verdicts(samples, load_results(out))


def failing_controls(suite, samples: list[dict], workers: int | None) -> list[dict]:
    """The control samples that fail their new task when graded (in the sandbox, in memory)."""
    from crucible.grade.verdicts import grade_all

    verdicts = grade_all(suite, samples, workers=workers or 2)
    return [s for s, v in zip(samples, verdicts) if not v.passed and v.status != "sandbox_error"]
