"""Answer-checked tasks: a question whose right answer is one number or string (GSM8K style).

Why: the improve loop's curriculum (tinyforge reports 32 -> 66/100 on a GSM8K-style one) needs
tasks checked by their final answer, not by tests, and an offline ladder of them. A task is
{"id", "question", "answer", "difficulty"?, "mode"?, "solution"?, "program"?} in a JSONL file
(`--tasks FILE`), or comes from the built-in generator of arithmetic word problems below.

Two modes, per task ("mode") or for the whole suite (`--answer-mode`, which overrides the tasks'):
- "final": the model answers in words; the grader extracts the final answer from the text and
  compares it with `answer` after normalisation (`crucible.grade.answer_text`). The text is parsed,
  never run; the task's language is `crucible.languages.PROSE`.
- "program": the model writes a Python program that prints the answer; it runs in the sandbox and
  its one printed line is compared with the same normalisation.

The generator: a problem starts with a quantity and applies `level` operations (add, take away,
multiply, share equally), each always worded by the same sentence, so that a small model that
knows the sentences of 1- and 2-step problems can compose longer ones:

    Question: Ada has 7 marbles. She gets 5 more. Then she has 3 times as many.
    How many marbles does Ada have now?
    Answer: 7 + 5 = 12. 12 * 3 = 36.
    #### 36

Everything is drawn from `random.Random(seed, level, i)`; whether a problem is held out depends
only on a hash of its content (HELDOUT_SHARE of them), so train and held-out never overlap,
whatever the seed or count. A task's id is that hash, so the same problem has the same id in every
draw. Each generated task carries a worked solution and a reference program (references, and a
pretraining corpus: `corpus_text`).

Not covered: answers that need a tolerance (1/3 vs 0.333), several answers per question, units
(an answer "42 apples" is the number 42; "42 kg" and "42 g" are not told apart), multi-turn tasks.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace
from pathlib import Path

from crucible.languages import PROSE
from crucible.tasks.common import Task, TaskError, read_task_file, require_strings, select_tasks, timeout_of

MODES = ("final", "program")
LEVELS = range(1, 7)
SPLITS = ("train", "heldout", "all")
HELDOUT_SHARE = 0.25
DEFAULT_TIMEOUT_S = 5.0
FINAL_PROMPT = "Question: {question}\nAnswer:"
FINAL_STOP = ("\n\n", "\nQuestion:")
FINAL_CHAT = ("{question}\n\nSolve it step by step, then give the final answer on the last line as "
              "\"#### <answer>\".")
PROGRAM_PROMPT = ("Write a Python program that prints the answer to this question, and nothing else, on one "
                  "line.\n\nQuestion: {question}\n```python\n")
PROGRAM_STOP = ("\n```",)

NAMES = (("Ada", "She"), ("Ben", "He"), ("Cleo", "She"), ("Dev", "He"), ("Eva", "She"), ("Finn", "He"))
ITEMS = ("marbles", "apples", "stamps", "coins", "shells", "cards")
# operation -> (sentence, worked step); {who} is the pronoun, {k} the operand, {a} and {b} before and after.
STEPS = {
    "add": ("{who} gets {k} more.", "{a} + {k} = {b}."),
    "take": ("{who} gives away {k}.", "{a} - {k} = {b}."),
    "times": ("Then {who_lower} has {k} times as many.", "{a} * {k} = {b}."),
    "share": ("{who} splits them into {k} equal piles and keeps one pile.", "{a} / {k} = {b}."),
}
MAX_VALUE = 10_000


@dataclass(frozen=True)
class AnswerTask:
    task_id: str
    question: str
    answer: str
    difficulty: str | None = None
    mode: str = "final"
    solution: str | None = None       # a worked answer in words, ending in "#### answer"
    program: str | None = None        # a reference Python program printing the answer
    timeout_s: float = DEFAULT_TIMEOUT_S

    def to_json(self) -> dict:
        out = {"id": self.task_id, "question": self.question, "answer": self.answer}
        for key in ("difficulty", "solution", "program"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return {**out, "mode": self.mode}


def split_of(question: str) -> str:
    digest = hashlib.sha256(("answers\x1f" + question).encode()).digest()
    return "heldout" if int.from_bytes(digest[:4], "big") < HELDOUT_SHARE * 2 ** 32 else "train"


def draw_problem(rng: random.Random, level: int) -> tuple[str, int, str, str]:
    """(question, answer, worked solution, reference program) of `level` operations."""
    name, who = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    value = rng.randint(2, 20)
    sentences, worked, lines = [f"{name} has {value} {item}."], [], [f"n = {value}"]
    for _ in range(level):
        divisors = [k for k in range(2, 10) if value % k == 0 and value // k > 1]
        ops = ["add"] + (["take"] if value > 2 else []) + (["times"] if value * 5 <= MAX_VALUE else [])
        op = rng.choice(ops + (["share"] if divisors else []))
        if op == "add":
            k = rng.randint(2, 20)
            new, line = value + k, f"n = n + {k}"
        elif op == "take":
            k = rng.randint(1, value - 1)
            new, line = value - k, f"n = n - {k}"
        elif op == "times":
            k = rng.randint(2, 5)
            new, line = value * k, f"n = n * {k}"
        else:
            k = rng.choice(divisors)
            new, line = value // k, f"n = n // {k}"
        sentence, step = STEPS[op]
        sentences.append(sentence.format(who=who, who_lower=who.lower(), k=k))
        worked.append(step.format(a=value, k=k, b=new))
        lines.append(line)
        value = new
    sentences.append(f"How many {item} does {name} have now?")
    return " ".join(sentences), value, " ".join(worked) + f"\n#### {value}", "\n".join(lines) + "\nprint(n)\n"


def generate(levels, *, split: str = "all", count: int = 50, seed: int = 0, mode: str = "final") -> list[AnswerTask]:
    """`count` distinct problems per level in `split`, drawn by `seed`, in a fixed order."""
    if split not in SPLITS:
        raise TaskError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    check_mode(mode, "--answer-mode")
    tasks = []
    for level in levels:
        if level not in LEVELS:
            raise TaskError(f"level must be in {LEVELS.start}..{LEVELS.stop - 1}, got {level}")
        found: dict[str, AnswerTask] = {}
        for i in range(200 * count):  # level 1 alone has ~30 000 problems: the bound only stops a runaway
            if len(found) == count:
                break
            question, answer, solution, program = draw_problem(random.Random(f"{seed}\x1f{level}\x1f{i}"), level)
            if split in ("all", split_of(question)):
                digest = hashlib.sha256(question.encode()).hexdigest()[:12]
                found.setdefault(question, AnswerTask(f"arith/{level}/{digest}", question, str(answer),
                                                      f"level {level}", mode, solution, program))
        tasks += found.values()
    return tasks


def check_mode(mode, where: str) -> str:
    if mode not in MODES:
        raise TaskError(f"{where}: 'mode' must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def load_tasks(path: str | Path) -> list[AnswerTask]:
    """Answer tasks from JSONL; a bad line raises TaskError (JsonlError: not JSON) naming file and line."""
    return read_task_file(path, parse_task, lambda t: t.task_id)


def parse_task(obj: dict, where: str) -> AnswerTask:
    require_strings(obj, ("id", "question"), where)
    answer = obj.get("answer")
    if isinstance(answer, bool) or not isinstance(answer, (str, int, float)) or not str(answer).strip():
        raise TaskError(f"{where}: 'answer' must be a non-empty string or a number")
    for key in ("difficulty", "solution", "program"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise TaskError(f"{where}: {key!r} must be a string")
    return AnswerTask(obj["id"], obj["question"], str(answer).strip(), obj.get("difficulty"),
                      check_mode(obj.get("mode", "final"), where), obj.get("solution"), obj.get("program"),
                      timeout_of(obj, where, DEFAULT_TIMEOUT_S))


def scope(tasks_file: str | Path | None = None, ids=None, limit: int | None = None,
          mode: str | None = None) -> list[AnswerTask]:
    """The tasks of `tasks_file`, else the held-out problems of levels 1-3 (seed 0, 50 per level);
    then --task-ids and --limit; `mode` (when given) overrides every task's."""
    tasks = load_tasks(tasks_file) if tasks_file else generate(range(1, 4), split="heldout", count=50)
    tasks = select_tasks(tasks, ids, limit, unknown=lambda bad: f"--task-ids: unknown answer tasks {', '.join(bad)}")
    if mode is None:
        return tasks
    check_mode(mode, "--answer-mode")
    return [replace(t, mode=mode) for t in tasks]


def task(t: AnswerTask) -> Task:
    """The common Task record: words in PROSE (final), or a whole Python program (program)."""
    if t.mode == "final":
        return Task(t.task_id, FINAL_PROMPT.format(question=t.question), PROSE, FINAL_STOP, answer=t.answer,
                    difficulty=t.difficulty, chat_prompt=FINAL_CHAT.format(question=t.question))
    return Task(t.task_id, PROGRAM_PROMPT.format(question=t.question), "python", PROGRAM_STOP, answer=t.answer,
                difficulty=t.difficulty)


def tasks(answer_tasks: list[AnswerTask]) -> list[Task]:
    return [task(t) for t in answer_tasks]


def reference(t: AnswerTask) -> str:
    """What a right sample looks like: the worked solution (final; else "#### answer") or the
    reference program (program; else one printing the answer)."""
    if t.mode == "final":
        return " " + (t.solution or f"#### {t.answer}")
    return t.program or f"print({t.answer!r})\n"


def reference_samples(answer_tasks: list[AnswerTask]) -> list[dict]:
    return [{"task_id": t.task_id, "language": task(t).language, "completion": reference(t), "sample_index": 0,
             **({"difficulty": t.difficulty} if t.difficulty else {})} for t in answer_tasks]


def corpus_text(t: AnswerTask) -> str:
    """A pretraining document: the prompt and the reference, closed as a base model should stop."""
    return task(t).prompt + reference(t) + ("\n\n" if t.mode == "final" else "```\n")
