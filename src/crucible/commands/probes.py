"""Ask a model a probe suite and score the replies per category, with 95% intervals.

examples:
  crucible probes --model native:ckpt/ --probes probes.toml --out runs/probes
  crucible probes --replies replies.jsonl --probes probes.toml --out runs/probes   # score given replies

DIR/probes.jsonl gets one row per probe as it is answered (append-only; a re-run asks only the
probes missing, and refuses other settings); DIR/probes.json holds the scores (probes.total and
probes.<category> for gates).
The probe file format is described in crucible.improve.probes. --replies takes JSONL {"id", "reply"}.
"""

from __future__ import annotations

import argparse

from crucible.commands import add_sampling_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="SPEC", help="native:DIR, hf:DIR, vllm:DIR or openai:MODEL@URL (chat)")
    src.add_argument("--replies", metavar="FILE.jsonl", help='score these replies ({"id", "reply"}) instead')
    p.add_argument("--probes", required=True, metavar="FILE", help="probe suite (.toml or .jsonl)")
    p.add_argument("--out", required=True, metavar="DIR")
    add_sampling_arguments(p, max_tokens=256)
    p.add_argument("--no-progress", action="store_true")


def main(args) -> int:
    import json
    from pathlib import Path

    from tqdm import tqdm

    from crucible.cli import UsageError
    from crucible.commands import gen_params, usage_errors
    from crucible.generate.types import BackendError
    from crucible.improve.probes import ProbeError, failed_checks, load_probes, render, score
    from crucible.io import JsonlError, appending, atomic_write, read_jsonl

    with usage_errors(ProbeError, JsonlError):
        probes = load_probes(args.probes)
        replies = read_replies(Path(args.replies), {p.id for p in probes}) if args.replies else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "probes.jsonl"
    settings = {"model": args.model, "replies": args.replies, "max_tokens": args.max_tokens,
                "temperature": args.temperature, "top_p": args.top_p, "top_k": args.top_k, "seed": args.seed}
    with usage_errors(JsonlError):
        done = {r["id"]: r for _, r in read_jsonl(path, repair=True)} if path.exists() else {}
    settings_path = out / "probes_settings.json"
    if done and settings_path.exists() and json.loads(settings_path.read_text()) != settings:
        raise UsageError(f"{out} holds replies from other settings ({settings_path}); use another --out")
    atomic_write(settings_path, json.dumps(settings, indent=2) + "\n")
    todo = [p for p in probes if p.id not in done]
    backend = None
    if todo and args.model:
        from crucible.generate.registry import load_backend

        params = gen_params(args)
        with usage_errors(BackendError):
            backend = load_backend(args.model)
    try:
        with appending(path) as f:
            for probe in tqdm(todo, desc="probes", unit="probe", disable=args.no_progress, dynamic_ncols=True):
                if backend is not None:
                    with usage_errors(BackendError, prefix=f"{args.model}: "):
                        reply = backend.chat([{"role": "user", "content": probe.prompt}], 1, params)[0].text
                else:
                    reply = replies.get(probe.id, "")
                failed = failed_checks(probe, reply)
                row = {"id": probe.id, "category": probe.category, "passed": not failed, "failed": failed,
                       "reply": reply}
                f.write(row)
                done[probe.id] = row
    finally:
        if backend is not None:
            backend.close()
    summary = score([done[p.id] for p in probes])
    atomic_write(out / "probes.json", json.dumps(summary, indent=2) + "\n")
    print(render(summary), end="")
    return 0


def read_replies(path, known: set[str]) -> dict[str, str]:
    from crucible.improve.probes import ProbeError
    from crucible.io import read_jsonl

    if not path.is_file():
        raise ProbeError(f"{path}: no such replies file")
    replies = {}
    for lineno, obj in read_jsonl(path):
        if obj.get("id") not in known or not isinstance(obj.get("reply"), str):
            raise ProbeError(f"{path}:{lineno}: expected {{\"id\": a probe id, \"reply\": text}}")
        replies[obj["id"]] = obj["reply"]
    return replies
