"""Sample a backend on a suite's tasks into `DIR/samples.jsonl`, resumably.

`DIR/samples.jsonl` is append-only, one row per sample ({"task_id", "language", "completion",
"sample_index", "finish_reason", "difficulty" when the task has one, "raw" when sanitizing changed
it}), written and fsynced as each task's samples arrive. A re-run with the same DIR generates only
the (task, index) pairs that are missing — a killed run loses at most the samples in flight and
duplicates nothing — and a torn last line is cut off (`crucible.io`).

Prompting. Base completion (default): the task's prompt is continued; the backend stops at the
task's stop set and cuts the text there (the `Backend` contract), so the completion is the text as
it comes. `--chat`: the task's `chat_messages()` are sent and the reply goes through
`sanitize.completion_from_chat`.

Seeds: each task's call gets a seed derived from (seed, task_id, first missing index), so a result
does not depend on which tasks were already done or how many threads ran. At temperature 0 a task is
generated once and the text copied to its n samples (greedy decoding is a function of the prompt),
and a backend that can batch prompts (`complete_many`: native, hf) decodes up to GREEDY_BATCH tasks
with the same stop sequences in one call.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

from crucible.eval.settings import SAMPLES
from crucible.generate.types import Backend, GenParams
from crucible.io import appending, read_jsonl
from crucible.sanitize import completion_from_chat
from crucible.tasks.common import Task

GREEDY_BATCH = 16  # tasks per call when a backend can batch prompts (native, hf) and decoding is greedy


def task_seed(seed: int | None, task_id: str, index: int) -> int | None:
    if seed is None:
        return None
    digest = hashlib.sha256(f"{seed}\x1f{task_id}\x1f{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def sample_row(task: Task, index: int, completion: str, gen) -> dict:
    """One samples.jsonl row; the model's text is kept as "raw" when sanitizing changed it. The task's
    difficulty goes along, as a samples file's rows get it from the suite: breakdowns and the
    curriculum (levels) read it from the graded rows."""
    row = {"task_id": task.task_id, "language": task.language, "completion": completion,
           "sample_index": index, "finish_reason": gen.finish_reason}
    if task.difficulty:
        row["difficulty"] = task.difficulty
    if completion != gen.text:
        row["raw"] = gen.text
    return row


def generate_task(backend: Backend, task: Task, indices: list[int], params: GenParams, chat: bool) -> list[dict]:
    """Rows for the samples `indices` of one task."""
    call = replace(params, seed=task_seed(params.seed, task.task_id, indices[0]), stop=() if chat else task.stop)
    count = 1 if params.temperature == 0 else len(indices)
    if chat:
        gens = backend.chat(task.chat_messages(), count, call)
    else:
        gens = backend.complete(task.prompt, count, call)
    if count == 1:
        gens = gens * len(indices)
    return [sample_row(task, index, completion_from_chat(gen.text, task) if chat else gen.text, gen)
            for index, gen in zip(indices, gens)]


def greedy_groups(todo: list[tuple[Task, list[int]]], size: int) -> list[list[tuple[Task, list[int]]]]:
    """Tasks with the same stop sequences, in chunks of `size`: one batched call each."""
    by_stops: dict[tuple, list] = {}
    for item in todo:
        by_stops.setdefault(item[0].stop, []).append(item)
    return [group[i:i + size] for group in by_stops.values() for i in range(0, len(group), size)]


def generate_greedy_batch(backend, group: list[tuple[Task, list[int]]], params: GenParams) -> list[dict]:
    """Greedy base completion of several tasks in one call (no seed matters at temperature 0)."""
    gens = backend.complete_many([task.prompt for task, _ in group], replace(params, stop=group[0][0].stop))
    return [sample_row(task, index, gen.text, gen) for (task, indices), gen in zip(group, gens) for index in indices]


def sample_suite(suite, backend: Backend, out: Path, *, n: int, params: GenParams, chat: bool,
                 progress: bool = True) -> list[dict]:
    """Generate what `out/samples.jsonl` lacks; return the samples in scope, in task order."""
    from tqdm import tqdm

    path = out / SAMPLES
    rows = read_jsonl(path, repair=True) if path.exists() else []
    have = {(r["task_id"], r["sample_index"]): r for _, r in rows}
    todo = []
    for task in suite.tasks:
        missing = [i for i in range(n) if (task.task_id, i) not in have]
        if missing:
            todo.append((task, missing))
    bar = tqdm(total=sum(len(m) for _, m in todo), desc=f"sampling {suite.name}", unit="sample",
               disable=not progress, dynamic_ncols=True)
    with appending(path) as samples, ThreadPoolExecutor(max(1, backend.concurrency)) as pool:
        if params.temperature == 0 and not chat and hasattr(backend, "complete_many"):
            futures = [pool.submit(generate_greedy_batch, backend, group, params)
                       for group in greedy_groups(todo, GREEDY_BATCH)]
        else:
            futures = [pool.submit(generate_task, backend, task, missing, params, chat) for task, missing in todo]
        try:
            for future in as_completed(futures):
                new = future.result()
                samples.write(*new)
                for row in new:
                    have[(row["task_id"], row["sample_index"])] = row
                bar.update(len(new))
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        finally:
            bar.close()
    return [have[(t.task_id, i)] for t in suite.tasks for i in range(n)]
