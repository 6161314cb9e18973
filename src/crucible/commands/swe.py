"""Agentic, SWE-style evaluation: build bug-injected instances, run a bash agent, grade patches.

examples:
  crucible swe build --out swe/inst --n 20                          # stdlib modules + CPython's tests
  crucible swe build --out swe/mine --source ~/src/proj --test-cmd "python3 -m unittest -v" --n 10
  crucible swe run --model native:ckpt/ --instances swe/inst --out runs/swe --runs 3
  crucible swe run --model openai:m@http://127.0.0.1:8000/v1 --instances swe/inst --out runs/o --workers 4
  crucible swe run --model native:/shared/ckpt --instances /shared/inst --out runs/r --runs 5 --ray auto
  crucible swe grade --instances swe/inst --predictions preds.jsonl --out runs/graded
  crucible swe grade --instances /shared/inst --predictions preds.jsonl --out runs/g --ray auto  # docs/scale.md
  crucible swe trajectories runs/swe --resolved-only --out traj.jsonl   # then: crucible sft --data traj.jsonl

Instances use SWE-bench's field names; each instance's repository is a git repo under
INSTANCES/repos. Everything a model writes runs in the bubblewrap sandbox. See docs/agentic.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from crucible.cli import UsageError
from crucible.commands import add_ray_argument, ray_session


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="build validated instances by bug injection")
    b.add_argument("--out", required=True, metavar="INSTANCES", help="instances directory (resumed if it exists)")
    b.add_argument("--source", default="stdlib", metavar="stdlib|DIR",
                   help="stdlib (modules with CPython's tests) or a git repository DIR")
    b.add_argument("--modules", help="stdlib modules, comma-separated (default: a built-in list)")
    b.add_argument("--test-cmd", help="DIR source: the test command, run at the repository root")
    b.add_argument("--log-parser", choices=("unittest", "pytest"), default="unittest",
                   help="DIR source: how to read the test output (default unittest; use -v)")
    b.add_argument("--n", type=int, default=20, help="instances to build (default 20)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--workers", type=int, default=1, help="candidates validated at once")

    r = sub.add_parser("run", help="run the bash agent on instances, K times, and grade")
    r.add_argument("--model", required=True, metavar="SPEC", help="native:DIR, hf:DIR, vllm:DIR, openai:MODEL@URL")
    r.add_argument("--instances", required=True, metavar="INSTANCES")
    r.add_argument("--out", required=True, metavar="RUN")
    r.add_argument("--runs", type=int, default=1, help="independent runs (pass@1 mean ± σ; pass@k over runs)")
    r.add_argument("--step-limit", type=int, default=30, help="model turns per instance (default 30)")
    r.add_argument("--time-limit", type=float, default=600.0, help="seconds per instance (default 600)")
    r.add_argument("--command-timeout", type=float, default=30.0, help="CPU seconds per command (default 30)")
    r.add_argument("--workers", type=int, default=1, help="instances worked on at once (--ray: the cluster's CPUs)")
    r.add_argument("--max-tokens", type=int, default=1024, help="per model turn")
    r.add_argument("--temperature", type=float, default=0.0)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--limit", type=int, help="only the first N instances")
    add_ray_argument(r)

    g = sub.add_parser("grade", help="grade SWE-bench-style predictions JSONL")
    g.add_argument("--instances", required=True, metavar="INSTANCES")
    g.add_argument("--predictions", required=True, metavar="JSONL",
                   help="rows {instance_id, model_name_or_path, model_patch}")
    g.add_argument("--out", required=True, metavar="RUN")
    g.add_argument("--workers", type=int, default=1)
    add_ray_argument(g)

    t = sub.add_parser("trajectories", help="agent trajectories as SFT conversations JSONL")
    t.add_argument("run", metavar="RUN")
    t.add_argument("--resolved-only", action="store_true", help="only runs whose patch resolved the instance")
    t.add_argument("--out", required=True, metavar="JSONL")
    for q in (b, r, g):
        q.add_argument("--unsafe-no-sandbox", action="store_true",
                       help="run tests and commands without bubblewrap (no isolation: trusted code only)")
        q.add_argument("--no-progress", action="store_true")


def main(args) -> int:
    return {"build": _build, "run": _run, "grade": _grade, "trajectories": _trajectories}[args.action](args)


def _positive(**values) -> None:
    for name, v in values.items():
        if v is not None and v < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {v}")


def _instances(path: str, limit: int | None = None) -> list[dict]:
    from crucible.swe.instances import InstanceError, load

    try:
        instances = load(Path(path))
    except InstanceError as e:
        raise UsageError(str(e)) from None
    return instances[:limit] if limit else instances


def _build(args) -> int:
    from crucible.sandbox import require_sandbox
    from crucible.swe.build import build
    from crucible.swe.sources import STDLIB_MODULES, SourceError, directory, stdlib_sources

    _positive(n=args.n, workers=args.workers)
    try:
        if args.source == "stdlib":
            modules = [m.strip() for m in args.modules.split(",") if m.strip()] if args.modules else STDLIB_MODULES
            sources = stdlib_sources(modules)
        else:
            if not Path(args.source).is_dir():
                raise UsageError(f"--source {args.source}: not 'stdlib' and not a directory")
            if not args.test_cmd:
                raise UsageError(f"--source {args.source}: a directory source needs --test-cmd")
            sources = [directory(Path(args.source), args.test_cmd, args.log_parser)]
        require_sandbox(args.unsafe_no_sandbox)
        counts = build(Path(args.out), sources, args.n, seed=args.seed, workers=args.workers,
                       unsafe=args.unsafe_no_sandbox, progress=not args.no_progress)
    except SourceError as e:
        raise UsageError(str(e)) from None
    print(f"{counts['kept']} instances in {args.out} ({counts['tried']} candidates tried now, "
          f"{counts['rejected']} rejected; see build.log.jsonl)")
    return 0 if counts["kept"] >= args.n else 1


def _run(args) -> int:
    from dataclasses import replace

    from crucible.commands import gen_params
    from crucible.generate.registry import load_backend, parse_spec
    from crucible.generate.types import BackendError
    from crucible.sandbox import require_sandbox
    from crucible.swe.agent import AgentConfig
    from crucible.swe.runs import SettingsMismatch, check_settings, render_runs, run_agent, run_settings

    _positive(runs=args.runs, step_limit=args.step_limit, workers=args.workers, limit=args.limit)
    if args.time_limit <= 0 or args.command_timeout <= 0:
        raise UsageError("--time-limit and --command-timeout must be > 0")
    instances = _instances(args.instances, args.limit)
    args.top_p, args.top_k = 1.0, 0
    config = AgentConfig(step_limit=args.step_limit, time_limit_s=args.time_limit,
                         params=replace(gen_params(args), seed=None))
    config.command_limits = replace(config.command_limits, timeout_s=args.command_timeout,
                                    wall_s=2 * args.command_timeout)
    try:
        parse_spec(args.model)
        check_settings(Path(args.out), run_settings(args.model, config, args.seed))
    except (BackendError, SettingsMismatch) as e:
        raise UsageError(str(e)) from None
    if not args.ray or args.unsafe_no_sandbox:  # with --ray, each node's sandbox failure is an error row
        require_sandbox(args.unsafe_no_sandbox)
    with ray_session(args.ray):
        fan = None
        try:
            if args.ray:  # a replica per GPU (per node for openai:); INSTANCES at the same path on every node
                from crucible.scale.fanout import fan_out as fan
                from crucible.scale.sampling import RayBackend

                backend = RayBackend(args.model)
            else:
                backend = load_backend(args.model)
        except BackendError as e:
            raise UsageError(str(e)) from None
        try:
            report = run_agent(backend, Path(args.instances).resolve(), instances, Path(args.out), config,
                               spec=args.model, runs=args.runs, seed=args.seed, workers=args.workers,
                               unsafe=args.unsafe_no_sandbox, progress=not args.no_progress, fan=fan)
        finally:
            backend.close()
    print(render_runs(report))
    return 0


def _grade(args) -> int:
    from crucible.sandbox import require_sandbox
    from crucible.swe.grade import grade_predictions, render_report
    from crucible.swe.instances import InstanceError, load_predictions

    _positive(workers=args.workers)
    instances = _instances(args.instances)
    try:
        predictions = load_predictions(Path(args.predictions), [i["instance_id"] for i in instances])
    except InstanceError as e:
        raise UsageError(str(e)) from None
    if not args.ray or args.unsafe_no_sandbox:  # with --ray, each node's sandbox failure is an error row
        require_sandbox(args.unsafe_no_sandbox)
    with ray_session(args.ray):
        fan = None
        if args.ray:  # INSTANCES must be at the same path on every node
            from crucible.scale.fanout import fan_out as fan
        summary = grade_predictions(Path(args.instances).resolve(), instances, predictions, Path(args.out),
                                    workers=args.workers, unsafe=args.unsafe_no_sandbox,
                                    progress=not args.no_progress, fan=fan)
    print(render_report(summary))
    return 0


def _trajectories(args) -> int:
    from crucible.swe.trajectories import conversations, write

    if not any(Path(args.run).glob("run-*/trajectories.jsonl")):
        raise UsageError(f"{args.run}: no agent runs here (RUN/run-*/trajectories.jsonl; made by crucible swe run)")
    rows = conversations(Path(args.run), resolved_only=args.resolved_only)
    write(rows, Path(args.out))
    print(json.dumps({"conversations": len(rows), "out": args.out}))
    return 0
