"""Mining: keep a model's verified samples as training data — SFT examples, DPO pairs, a negative control.

Why: the improve loop trains a model on what it got right. Sampling and grading are `crucible
eval`'s (resumable: samples.jsonl and results.jsonl); this module turns graded samples into data:

- mined: passing samples, deduplicated per task by normalised program (`contamination.normalise`:
  Python through the ast, so layout and comments do not make a duplicate new; an answer in words by
  its whitespace-squeezed text, `sanitize.graded_text`), at most K per task,
  in sample order; then every sample that reproduces an eval prompt or solution is dropped and
  reported (`contamination.ContaminationIndex`).
- pairs: for tasks with both, (passing, failing) programs — distinct passing ones against distinct
  failing ones, at most K pairs per task. A failure for infrastructure reasons (sandbox_error) is
  no model failure and never a "rejected" answer.
- control: as many examples as mined, each program moved to another task of the same batch (a
  derangement), for a negative-control round that trains on the same text with the verification
  broken. The caller grades them and keeps only those that fail.

Records: base-model prompting gives {"prompt", "completion"} (the completion ends with the task's
closing fence when the task is a fenced whole program, so a model learns to stop); chat prompting
gives {"messages": [user, assistant]}. Both carry task_id and sample_index; pairs carry prompt or
messages, chosen and rejected — the shapes `crucible sft` / `crucible dpo` read.

Not covered: more than one turn, rewriting (e.g. simplifying) mined programs.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

from crucible.improve.contamination import normalise
from crucible.sanitize import graded_text

FENCE_STOP = "\n```"


class MineError(ValueError):
    """Samples and the grader's rows that do not go together."""


def join_verdicts(samples: list[dict], rows: list[dict]) -> list[dict]:
    """Samples with the grader's "status" and "passed" attached, in sample order; a sample with no row
    is an error (grade it first)."""
    verdicts = {(r["task_id"], r["language"], r["sample_index"]): r for r in rows}
    out = []
    for s in samples:
        row = verdicts.get((s["task_id"], s["language"], s["sample_index"]))
        if row is None:
            raise MineError(f"sample {s['sample_index']} of {s['task_id']} ({s['language']}) has no graded row")
        out.append({**s, "status": row["status"], "passed": bool(row["passed"])})
    return out


def by_task(graded: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for s in graded:
        groups[(s["task_id"], s["language"])].append(s)
    return {k: sorted(v, key=lambda s: s["sample_index"]) for k, v in sorted(groups.items())}


def distinct(samples: list[dict]) -> list[dict]:
    """The first sample of each normalised program, in order."""
    seen, out = set(), []
    for s in samples:
        key = normalise(graded_text(s["completion"], s["language"]), s["language"])
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def select_passing(graded: list[dict], per_task: int) -> list[dict]:
    """Distinct passing samples, at most `per_task` per task."""
    return [s for group in by_task(graded).values() for s in distinct([s for s in group if s["passed"]])[:per_task]]


def select_pairs(graded: list[dict], per_task: int) -> list[tuple[dict, dict]]:
    """(chosen, rejected): distinct passing against distinct model-failed samples of the same task,
    at most `per_task`, each chosen and each rejected used as evenly as possible."""
    pairs = []
    for group in by_task(graded).values():
        chosen = distinct([s for s in group if s["passed"]])
        rejected = distinct([s for s in group if not s["passed"] and s["status"] != "sandbox_error"])
        pairs += [(chosen[c], rejected[r]) for c, r in spread(len(chosen), len(rejected), per_task)]
    return pairs


def spread(n_chosen: int, n_rejected: int, count: int) -> list[tuple[int, int]]:
    """`count` distinct (chosen, rejected) index pairs, each next one using the least-used samples."""
    left = set(itertools.product(range(n_chosen), range(n_rejected)))
    uses_c, uses_r, out = [0] * n_chosen, [0] * n_rejected, []
    while left and len(out) < count:
        c, r = min(left, key=lambda p: (uses_c[p[0]] + uses_r[p[1]], p))
        left.remove((c, r))
        uses_c[c] += 1
        uses_r[r] += 1
        out.append((c, r))
    return out


def control_samples(mined: list[dict]) -> list[dict]:
    """Each mined program handed to the next task (in sorted task order): a derangement when the
    mined samples cover at least two tasks. Samples of one task only give no control."""
    tasks = sorted({(s["task_id"], s["language"]) for s in mined})
    if len(tasks) < 2:
        return []
    shift = {t: tasks[(i + 1) % len(tasks)] for i, t in enumerate(tasks)}
    moved = [(s, shift[(s["task_id"], s["language"])]) for s in mined]
    return [{**s, "task_id": task_id, "language": language, "control_from": s["task_id"]}
            for s, (task_id, language) in moved]


def completion_text(sample: dict, task) -> str:
    """The trained completion: the sampled text, closed with the fence when the task's stop is one."""
    return sample["completion"] + (FENCE_STOP if FENCE_STOP in task.stop else "")


def sft_record(sample: dict, task, chat: bool) -> dict:
    """A training example for `crucible sft` from a sample of `task` (a crucible.tasks.common.Task)."""
    meta = {"task_id": sample["task_id"], "sample_index": sample["sample_index"]}
    if "control_from" in sample:
        meta["control_from"] = sample["control_from"]
    if chat:
        return {"messages": [*task.chat_messages(),
                             {"role": "assistant", "content": sample.get("raw", sample["completion"])}], **meta}
    return {"prompt": task.prompt, "completion": completion_text(sample, task), **meta}


def pair_record(chosen: dict, rejected: dict, task, chat: bool) -> dict:
    meta = {"task_id": chosen["task_id"], "chosen_index": chosen["sample_index"],
            "rejected_index": rejected["sample_index"], "rejected_status": rejected["status"]}
    if chat:
        return {"messages": task.chat_messages(),
                "chosen": chosen.get("raw", chosen["completion"]),
                "rejected": rejected.get("raw", rejected["completion"]), **meta}
    return {"prompt": task.prompt, "chosen": completion_text(chosen, task),
            "rejected": completion_text(rejected, task), **meta}


def decontaminate(passing: list[dict], pairs: list[tuple[dict, dict]], tasks: dict, index
                  ) -> tuple[list[dict], list[tuple[dict, dict]], list[dict]]:
    """(mined, pairs, offenders): every sample that reproduces an eval text (`index.matches`) is
    dropped, with the pairs it is in; each offender is reported with what it reproduces. `tasks` maps
    (task_id, language) to the Task."""
    key = lambda s: (s["task_id"], s["language"], s["sample_index"])  # noqa: E731
    unique = {key(s): s for s in passing + [s for pair in pairs for s in pair]}
    offenders = []
    for s in unique.values():
        prompt = tasks[(s["task_id"], s["language"])].prompt
        found = index.matches(prompt, graded_text(s["completion"], s["language"]))
        if found:
            offenders.append({"task_id": s["task_id"], "language": s["language"], "sample_index": s["sample_index"],
                              "passed": s["passed"], "matches": found})
    flagged = {(o["task_id"], o["language"], o["sample_index"]) for o in offenders}
    return ([s for s in passing if key(s) not in flagged],
            [(c, r) for c, r in pairs if key(c) not in flagged and key(r) not in flagged], offenders)
