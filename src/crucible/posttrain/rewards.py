"""GRPO rewards: the sandboxed grader's verdict, plus optional user reward functions.

The grader is crucible's own (the suite's `grade`: HumanEval's judge, which never shares a process
with the candidate, or a puzzle program run in bubblewrap), so a policy that learns a reward hack —
patching `__eq__`, exiting 0 early, printing "passed" — earns 0 for it, as tests/test_reward_hacks.py
shows for the grader itself and tests/test_grpo.py for these rewards. verl's prime_code runs the
solution inside the grading process; TRL ships no sandbox at all.

    pass -> 1.0; any model failure -> 0.0 (`Task.reward`); an infrastructure failure (sandbox_error) -> None:
    no reward, and the caller drops the sample's whole group (never scored as the model's fault).

User reward functions (`--reward file.py:function[:weight]`) are called as function(task,
completion) -> float | None (task: a crucible.tasks.common.Task; None: not applicable to this
sample) and added with their weight.
They run in this process: they are the user's code, and must not execute the completion (grading
model-written code is the sandbox's job).

Grading is the in-memory `crucible.grade.verdicts.grade_all` (identical programs in one call run
once); GRPO holds the suite's warm grader pool (`suite.pool`) for the whole run, so HumanEval's
judge processes start once, not every step.

Not covered: partial credit from the share of tests passed (the judges report pass/fail only).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from crucible.grade import INFRA


class RewardError(ValueError):
    """A --reward spec cannot be loaded."""


@dataclass
class RewardFn:
    name: str
    fn: Callable
    weight: float = 1.0


def load_reward_fn(spec: str) -> RewardFn:
    """'path/to/file.py:function' or 'path/to/file.py:function:weight'."""
    parts = spec.split(":")
    weight = 1.0
    if len(parts) == 3:
        try:
            weight = float(parts[2])
        except ValueError:
            raise RewardError(f"--reward {spec}: weight {parts[2]!r} is not a number") from None
        parts = parts[:2]
    if len(parts) != 2 or not parts[0].endswith(".py"):
        raise RewardError(f"--reward {spec}: expected FILE.py:FUNCTION[:WEIGHT]")
    path = Path(parts[0])
    if not path.is_file():
        raise RewardError(f"--reward {spec}: no such file {path}")
    module_spec = importlib.util.spec_from_file_location(f"crucible_reward_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as e:  # the user's file: report whatever it raised
        raise RewardError(f"--reward {spec}: importing {path} failed: {type(e).__name__}: {e}") from None
    fn = getattr(module, parts[1], None)
    if not callable(fn):
        raise RewardError(f"--reward {spec}: {path} has no function {parts[1]!r}")
    return RewardFn(f"{path.stem}.{parts[1]}", fn, weight)


def sample_of(task, completion: str) -> dict:
    return {"task_id": task.task_id, "language": task.language, "completion": completion}


def grade(suite, tasks: list, completions: list[str], workers: int = 4, pool=None) -> list:
    """The grader's verdict for each (task, completion), in memory (crucible.grade.verdicts: each
    distinct program run once); `pool`: the suite's warm graders held across calls, or None."""
    from crucible.grade.verdicts import grade_all

    samples = [sample_of(t, c) for t, c in zip(tasks, completions)]
    for s in samples:
        why = suite.check_sample(s)
        if why:
            raise ValueError(f"cannot grade a sample of {s['task_id']}: {why}")
    return grade_all(suite, samples, workers=workers, pool=pool)


def rewards(tasks: list, completions: list[str], verdicts: list, fns: list[RewardFn] = ()) -> list[float | None]:
    """The task's reward for its verdict (`Task.reward`: 1 for a pass, else 0) plus weighted user
    rewards, per sample; None where the grader's infrastructure failed."""
    out = []
    for task, completion, verdict in zip(tasks, completions, verdicts):
        if verdict.status in INFRA:
            out.append(None)
            continue
        r = task.reward(verdict.status)
        for f in fns:
            extra = f.fn(task, completion)
            if extra is not None:
                r += f.weight * float(extra)
        out.append(r)
    return out
