"""Ask a model a probe suite and score the replies per category, with 95% intervals.

examples:
  crucible probes --model native:ckpt/ --probes probes.toml --out runs/probes
  crucible probes --replies replies.jsonl --probes probes.toml --out runs/probes   # score given replies

DIR/probes.jsonl gets one row per probe as it is answered (append-only; a re-run asks only the
probes missing, and refuses other settings); DIR/probes.json holds the scores (probes.total and probes.<category> for gates).
The probe file format is described in crucible.improve.probes. --replies takes JSONL {"id", "reply"}.
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="SPEC", help="native:DIR, hf:DIR, vllm:DIR or openai:MODEL@URL (chat)")
    src.add_argument("--replies", metavar="FILE.jsonl", help='score these replies ({"id", "reply"}) instead')
    p.add_argument("--probes", required=True, metavar="FILE", help="probe suite (.toml or .jsonl)")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")


def main(args) -> int:
    import json
    import os
    from pathlib import Path

    from tqdm import tqdm

    from crucible.cli import UsageError
    from crucible.generate.sampling import read_rows
    from crucible.improve.probes import ProbeError, failed_checks, load_probes, render, score

    try:
        probes = load_probes(args.probes)
    except ProbeError as e:
        raise UsageError(str(e)) from None
    replies = read_replies(Path(args.replies), {p.id for p in probes}) if args.replies else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "probes.jsonl"
    settings = {"model": args.model, "replies": args.replies, "max_tokens": args.max_tokens,
                "temperature": args.temperature, "seed": args.seed}
    done = {r["id"]: r for r in read_rows(path)}
    settings_path = out / "probes_settings.json"
    if done and settings_path.exists() and json.loads(settings_path.read_text()) != settings:
        raise UsageError(f"{out} holds replies from other settings ({settings_path}); use another --out")
    settings_path.write_text(json.dumps(settings, indent=2) + "\n")
    todo = [p for p in probes if p.id not in done]
    backend = None
    if todo and args.model:
        from crucible.generate.backends import BackendError, GenParams, load_backend

        params = GenParams(max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed)
        if params.check():
            raise UsageError(f"--{params.check().replace('_', '-', 1)}")
        try:
            backend = load_backend(args.model)
        except BackendError as e:
            raise UsageError(str(e)) from None
    try:
        with path.open("a", encoding="utf-8") as f:
            for probe in tqdm(todo, desc="probes", unit="probe", disable=args.no_progress, dynamic_ncols=True):
                if backend is not None:
                    reply = backend.chat([{"role": "user", "content": probe.prompt}], 1, params)[0].text
                else:
                    reply = replies.get(probe.id, "")
                failed = failed_checks(probe, reply)
                row = {"id": probe.id, "category": probe.category, "passed": not failed, "failed": failed,
                       "reply": reply}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
                done[probe.id] = row
    finally:
        if backend is not None:
            backend.close()
    summary = score([done[p.id] for p in probes])
    tmp = out / "probes.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, out / "probes.json")
    print(render(summary), end="")
    return 0


def read_replies(path, known: set[str]) -> dict[str, str]:
    from crucible.cli import UsageError
    from crucible.grade.runner import jsonl_objects

    if not path.is_file():
        raise UsageError(f"{path}: no such replies file")
    replies = {}
    for lineno, obj in jsonl_objects(path):
        if obj.get("id") not in known or not isinstance(obj.get("reply"), str):
            raise UsageError(f"{path}:{lineno}: expected {{\"id\": a probe id, \"reply\": text}}")
        replies[obj["id"]] = obj["reply"]
    return replies
