"""Have a model write its own problems; keep those whose reference passes its tests and a mutant fails them.

examples:
  crucible invent --model hf:DIR --n 64 --temperature 0.8 --chat --out runs/inv
  crucible invent --model openai:my-model@http://127.0.0.1:8000/v1 --n 200 --temperature 1 --chat --out runs/inv
  crucible eval humaneval --tasks runs/inv/problems.jsonl --reference --out runs/inv-ref   # all must pass
  crucible eval humaneval --tasks runs/inv/problems.jsonl --model hf:DIR --n 4 --out runs/inv-eval
  crucible mine --suite humaneval --tasks runs/inv/problems.jsonl --model hf:DIR --out runs/inv-mine

DIR gets samples.jsonl (the replies), problems.jsonl (kept, HumanEval format), rejected.jsonl (each
rejection with its reason) and invent.json (counts per reason, kept share, mutation score, with
intervals). A killed run resumes: decided sample indexes are skipped. Every reference and mutant runs
in the sandbox (HumanEval's judge); see crucible.improve.invent for the checks.
"""

from __future__ import annotations

import argparse

from crucible.commands import add_sampling_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    from crucible.improve.invent import MIN_ASSERTS

    p.add_argument("--model", required=True, metavar="SPEC", help="native:DIR, hf:DIR, vllm:DIR or openai:MODEL@URL")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (resumable)")
    p.add_argument("--n", type=int, required=True, help="responses to draw (sample indexes 0..N-1)")
    add_sampling_arguments(p, temperature=0.8, max_tokens=768)
    p.add_argument("--chat", action="store_true", help="prompt with the chat template, not as a completion")
    p.add_argument("--min-asserts", type=int, default=MIN_ASSERTS,
                   help=f"asserts a problem's check needs (default {MIN_ASSERTS})")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight for openai: specs")
    p.add_argument("--workers", type=int, default=None, help="parallel graders (default: CPU count)")
    p.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="run untrusted code without bubblewrap (prints a warning on every run)")
    p.add_argument("--no-progress", action="store_true")


def main(args) -> int:
    import os
    from pathlib import Path

    from crucible.cli import UsageError
    from crucible.commands import gen_params, usage_errors
    from crucible.commands.eval import input_errors
    from crucible.eval.settings import check_settings
    from crucible.eval.settings import settings as sampling_settings
    from crucible.generate.registry import load_backend
    from crucible.improve import invent
    from crucible.improve.contamination import ContaminationIndex, bundled_eval_texts
    from crucible.sandbox import require_sandbox

    for name in ("n", "min_asserts"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    params = gen_params(args)
    require_sandbox(args.unsafe_no_sandbox)
    settings = invent.Settings(n=args.n, chat=args.chat, min_asserts=args.min_asserts,
                               workers=args.workers or os.cpu_count() or 1, unsafe=args.unsafe_no_sandbox,
                               progress=not args.no_progress)
    with usage_errors(*input_errors()):
        check_settings(Path(args.out), sampling_settings(args.model, params, args.chat))  # before the model loads
        options = {"concurrency": args.concurrency} if args.model.startswith("openai:") else {}
        backend = load_backend(args.model, **options)
        try:
            summary = invent.invent(backend, args.out, params, settings, ContaminationIndex(bundled_eval_texts()))
        finally:
            backend.close()
    print(invent.render(summary) + f"\n-> {args.out}")
    return 0
