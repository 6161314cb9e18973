"""Sample a model on a suite, verify every sample in the sandbox, keep what passed as training data.

examples:
  crucible world --levels 3 --split train --count 200 --out train3.jsonl
  crucible mine --model native:ckpt/ --suite world --tasks train3.jsonl --n 8 --temperature 1 --out runs/mine1
  crucible mine --model hf:DIR --suite puzzles --language python --n 16 --temperature 0.8 --chat --out runs/m

DIR gets samples.jsonl and results.jsonl (exactly `crucible eval --model`: a killed run resumes),
then mined.jsonl (distinct passing programs, at most --per-task per task, for `crucible sft`),
pairs.jsonl (passing vs failing programs of a task, for `crucible dpo`), contamination.jsonl (mined
samples dropped because they reproduce an eval prompt or solution), with --control control.jsonl
(the mined programs moved to other tasks, verified to fail: a negative control), and mine.json.
The contamination check covers HumanEval, the puzzles, the task world's held-out tasks (of the levels
mined) and every --eval-tasks file (see crucible.improve.contamination).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="SPEC", help="native:DIR, hf:DIR, vllm:DIR or openai:MODEL@URL")
    p.add_argument("--suite", required=True, choices=("humaneval", "puzzles", "world"), help="where tasks come from")
    p.add_argument("--out", required=True, metavar="DIR", help="mining directory (resumable)")
    p.add_argument("--tasks", metavar="FILE.jsonl", help="puzzles or world tasks instead of the bundled ones")
    p.add_argument("--language", default="python", help="language of the tasks (puzzles, HumanEval)")
    p.add_argument("--limit", type=int, help="only the first N tasks")
    p.add_argument("--task-ids", help="only these task ids, comma-separated")
    p.add_argument("--per-task", type=int, default=4, help="at most this many mined programs per task (default 4)")
    p.add_argument("--pairs-per-task", type=int, default=4, help="at most this many DPO pairs per task (default 4)")
    p.add_argument("--eval-tasks", action="append", default=[], metavar="FILE.jsonl",
                   help="world tasks you evaluate on: mined samples reproducing them are dropped (repeatable)")
    p.add_argument("--control", action="store_true", help="also write control.jsonl (a negative control)")
    gen = p.add_argument_group("sampling")
    gen.add_argument("--n", type=int, default=8, help="samples per task (default 8)")
    gen.add_argument("--temperature", type=float, default=1.0)
    gen.add_argument("--top-p", type=float, default=1.0)
    gen.add_argument("--top-k", type=int, default=0)
    gen.add_argument("--max-tokens", type=int, default=512)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--chat", action="store_true", help="prompt with the chat template, not as a completion")
    gen.add_argument("--concurrency", type=int, default=8, help="requests in flight for openai: specs")
    p.add_argument("--workers", type=int, default=None, help="parallel graders (default: CPU count)")
    p.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="run untrusted code without bubblewrap (prints a warning on every run)")
    p.add_argument("--no-progress", action="store_true")


def main(args) -> int:
    import importlib
    import json
    from pathlib import Path

    from crucible.cli import UsageError
    from crucible.commands.eval import SUITES
    from crucible.improve import mine
    from crucible.improve.contamination import ContaminationIndex, bundled_eval_texts, world_eval_texts
    from crucible.sandbox import require_sandbox

    for name in ("per_task", "pairs_per_task", "n"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    require_sandbox(args.unsafe_no_sandbox)
    suite = importlib.import_module(SUITES[args.suite]).load_suite(args)
    levels = {t.level for t in suite.world} if args.suite == "world" else ()
    eval_texts = bundled_eval_texts(levels) + [t for path in args.eval_tasks for t in world_eval_texts(load_world(path))]
    out = Path(args.out)
    graded = sample_and_grade(suite, args)
    tasks = {t["task_id"]: t for t in suite.tasks}
    passing = mine.select_passing(graded, args.per_task)
    kept, pairs, offenders = mine.decontaminate(passing, mine.select_pairs(graded, args.pairs_per_task), tasks,
                                                ContaminationIndex(eval_texts))
    files = {
        "mined.jsonl": [mine.sft_record(s, tasks[s["task_id"]], args.chat) for s in kept],
        "pairs.jsonl": [mine.pair_record(c, r, tasks[c["task_id"]], args.chat) for c, r in pairs],
        "contamination.jsonl": offenders,
    }
    if args.control:
        files["control.jsonl"] = [mine.sft_record(s, tasks[s["task_id"]], args.chat)
                                  for s in failing_controls(suite, mine.control_samples(kept), args)]
    for name, records in files.items():
        write_jsonl_atomic(out / name, records)
    graded_summary = json.loads((out / "summary.json").read_text())
    summary = {"suite": suite.name, "model": args.model, "n": args.n, "temperature": args.temperature,
               "tasks": len(suite.tasks), "samples": len(graded),
               "passing_samples": sum(s["passed"] for s in graded),
               "tasks_with_a_pass": len({s["task_id"] for s in graded if s["passed"]}),
               "pass@1": graded_summary["pass@k"]["1"], "pass@1_ci": graded_summary["ci"]["1"],
               "distinct_passing_kept": len(passing), "contaminated": len(offenders),
               "mined": len(kept), "pairs": len(pairs), "control": len(files.get("control.jsonl", []))}
    write_jsonl_atomic(out / "mine.json", [summary], indent=2)
    lo, hi = summary["pass@1_ci"]
    print(f"{summary['samples']} samples of {summary['tasks']} tasks: pass@1 {100 * summary['pass@1']:.1f}% "
          f"[{100 * lo:.1f}, {100 * hi:.1f}], {summary['tasks_with_a_pass']} tasks with a passing sample\n"
          f"mined {summary['mined']} programs (distinct passing {summary['distinct_passing_kept']}, "
          f"{summary['contaminated']} dropped as contaminated), {summary['pairs']} pairs"
          + (f", {summary['control']} control examples" if args.control else "") + f" -> {out}")
    return 0


def sample_and_grade(suite, args) -> list[dict]:
    """`crucible eval --model` into args.out (resumable), then the samples with their verdicts."""
    from pathlib import Path

    from crucible.generate.sampling import SAMPLES, evaluate_model, read_rows
    from crucible.grade.runner import load_results
    from crucible.improve.mine import join_verdicts

    args.runs = 1
    evaluate_model(suite, args, [1])
    out = Path(args.out)
    scope = {t["task_id"] for t in suite.tasks}
    samples = [s for s in read_rows(out / SAMPLES) if s["task_id"] in scope and s["sample_index"] < args.n]
    return join_verdicts(samples, load_results(out))


def failing_controls(suite, samples: list[dict], args) -> list[dict]:
    """The control samples that fail their new task when graded (in the sandbox)."""
    keyed = {f"control-{i}": s for i, s in enumerate(samples)}
    verdicts = dict(suite.grade(list(keyed.items()), args.workers or 2))
    return [s for key, s in keyed.items() if not verdicts[key].passed and verdicts[key].status != "sandbox_error"]


def load_world(path: str):
    from crucible.cli import UsageError
    from crucible.tasks.world import WorldError, load_tasks

    try:
        return load_tasks(path)
    except WorldError as e:
        raise UsageError(f"--eval-tasks: {e}") from None


def write_jsonl_atomic(path, records: list[dict], indent: int | None = None) -> None:
    import json
    import os

    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False, indent=indent) + "\n")
    os.replace(tmp, path)
