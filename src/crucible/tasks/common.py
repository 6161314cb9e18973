"""What a task is, whatever suite it comes from: the one `Task` record, `select_tasks` and the one
tasks-file reader (`read_task_file`: FILE:LINE errors, unique ids).

A task is either a *function completion* (HumanEval and its translations: `entry_point` names the
function, `test` is the code that checks it, a sample continues the prompt), a *whole program*
(puzzles: the program prints one line compared with `answer`) or an *answer* in words (language
`crucible.languages.PROSE`: answer-checked tasks whose reply is text ending in `answer`, parsed and
never run). All carry the prompt a base model continues, its language and the stop set that ends a
completion: the one place a task's stop sequences come from.

A task also says what the other users of tasks need, so that sampling, SFT and GRPO ask the task
rather than re-deriving it: `chat_messages()` (the conversation a chat model is given),
`to_conversation(solution)` (that conversation with a reference answer, a training example) and
`reward(status)` (the scalar a grading verdict is worth to RL; grading itself lives in
`crucible.grade`, which depends on tasks, not the other way round).

Not covered: multi-turn tasks, tasks that read input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar


class TaskError(ValueError):
    """A task file or a task selection is not usable; the message says which and why."""


@dataclass(frozen=True)
class Task:
    task_id: str
    prompt: str                       # what a base model continues
    language: str                     # canonical language name (crucible.languages)
    stop: tuple[str, ...] = ()        # where a base model's completion ends
    entry_point: str | None = None    # function completion: the function a sample completes
    test: str | None = None           # function completion: code that checks it (Python HumanEval)
    answer: str | None = None         # whole program: the line it must print; answer task: the answer
    difficulty: str | None = None     # for breakdowns (puzzles)
    chat_prompt: str | None = None    # what a chat model is asked, where `prompt` (a base model's) won't do

    def __post_init__(self):
        object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def kind(self) -> str:
        from crucible.languages import PROSE

        return "function" if self.entry_point else "answer" if self.language == PROSE else "program"

    def chat_messages(self) -> list[dict]:
        """The conversation a chat model is given for this task."""
        from crucible.languages import get

        if self.chat_prompt:
            return [{"role": "user", "content": self.chat_prompt}]
        language = get(self.language)
        tag = language.fence_tags[0] if language.fence_tags else language.name
        if self.kind == "program":
            # A base-model prompt may end by opening the answer's fence (puzzles do): ask for it instead.
            prompt, opened = re.subn(r"\n*(```|~~~)[^\n`]*\n?\Z", "", self.prompt)
            if opened:
                prompt += f"\n\nReply with the program in one ```{tag} code block."
            return [{"role": "user", "content": prompt}]
        text = (f"Complete the following {language.name} function. Reply with the whole function, "
                f"signature included, in one ```{tag} code block.\n\n```{tag}\n{self.prompt.strip()}\n```")
        return [{"role": "user", "content": text}]

    def to_conversation(self, solution: str) -> list[dict]:
        """A training conversation: the chat prompt, answered with `solution` (the whole function or
        program) in one fenced block, the form `sanitize.completion_from_chat` reads back; an answer
        task's reply is `solution` as it is (worked text)."""
        from crucible.languages import get

        if self.kind == "answer":
            return self.chat_messages() + [{"role": "assistant", "content": solution.strip()}]
        tag = (get(self.language).fence_tags or (self.language,))[0]
        reply = f"```{tag}\n{solution.strip(chr(10))}\n```"
        return self.chat_messages() + [{"role": "assistant", "content": reply}]

    def reward(self, status: str) -> float:
        """What a graded sample is worth to RL: 1 for a pass, 0 for anything else (a verdict status,
        crucible.grade.VERDICTS). A task family with partial credit would say so here."""
        return 1.0 if status == "pass" else 0.0


T = TypeVar("T")


def parse_ids(ids: str | Iterable[str] | None) -> list[str]:
    """'a,b' or ['a', 'b'] -> ['a', 'b'] (blanks dropped, duplicates kept once, order kept)."""
    if not ids:
        return []
    parts = ids.split(",") if isinstance(ids, str) else ids
    return list(dict.fromkeys(t.strip() for t in parts if t.strip()))


def select_tasks(tasks: Sequence[T], ids: str | Iterable[str] | None = None, limit: int | None = None, *,
                 key: Callable[[T], str] = lambda t: t.task_id,
                 unknown: Callable[[list[str]], str] | None = None) -> list[T]:
    """The tasks in scope: those whose id is in `ids` (in the order given; every task sharing an id,
    e.g. one puzzle in several languages, comes along), else all in order; then those of the first
    `limit` ids. An unknown id raises TaskError with `unknown(ids)` as its message."""
    chosen = list(tasks)
    wanted = parse_ids(ids)
    if wanted:
        by_id: dict[str, list[T]] = {}
        for t in chosen:
            by_id.setdefault(key(t), []).append(t)
        missing = [t for t in wanted if t not in by_id]
        if missing:
            raise TaskError(unknown(missing) if unknown else f"--task-ids: unknown task(s) {', '.join(missing)}")
        chosen = [t for i in wanted for t in by_id[i]]
    if limit is not None:
        if limit < 1:
            raise TaskError(f"--limit must be >= 1, got {limit}")
        keep = set(list(dict.fromkeys(key(t) for t in chosen))[:limit])
        chosen = [t for t in chosen if key(t) in keep]
    return chosen


def read_task_file(path: str | Path, parse: Callable[[dict, str], T], task_id: Callable[[T], str], *,
                   error: type[TaskError] = TaskError, noun: str = "tasks") -> list[T]:
    """Every line of a tasks JSONL through `parse(row, "FILE:LINE")`, which raises `error` naming that
    place; the file must exist, hold at least one task, and its task ids must be unique."""
    from crucible.io import read_jsonl

    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such tasks file")
    tasks, seen = [], set()
    for lineno, row in read_jsonl(path):
        where = f"{path}:{lineno}"
        task = parse(row, where)
        if task_id(task) in seen:
            raise error(f"{where}: duplicate id {task_id(task)!r}")
        seen.add(task_id(task))
        tasks.append(task)
    if not tasks:
        raise error(f"{path}: no {noun}")
    return tasks


def require_strings(row: dict, keys: Iterable[str], where: str) -> None:
    for key in keys:
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise TaskError(f"{where}: {key!r} must be a non-empty string")


def timeout_of(row: dict, where: str, default: float) -> float:
    t = row.get("timeout_s", default)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= 600:
        raise TaskError(f"{where}: 'timeout_s' must be a number of seconds in (0, 600], got {t!r}")
    return float(t)
