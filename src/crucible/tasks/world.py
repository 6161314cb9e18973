"""A built-in verifiable task world: "transform the input string" tasks at difficulty levels.

Why: the improve loop needs tasks that are cheap to make in any number, checked exactly, and hard
in a controlled way, so that a model trained on easy ones can be measured — and improved — on harder
ones. A task composes `level` string operations (reverse, upper, drop vowels, rotate, dedupe,
sort, ...): the program reads one line from stdin, applies them in order and prints the result.

    Read a line, apply the steps in order, print the result: reverse, upper, dedupe
    ```python
    s = input()
    s = s[::-1]
    s = s.upper()
    s = ''.join(dict.fromkeys(s))
    print(s)
    ```

The prompt is short and regular so that a tiny character-level GPT can learn it: one line per step,
always the same line for the same operation, so a model that knows the lines of 1- and 2-step tasks
can compose 3-step ones. Each task has a reference program (the pretraining corpus of easy levels
is prompt + reference), hidden tests (inputs and the expected outputs, computed in-process by the
reference *functions*, which are ours, never by model code), and extra inputs without answers for
vote@N's behaviour clusters.

Determinism and splits: the tasks of a level are all op sequences of that length with no operation
twice in a row and no two case operations (upper, lower, swapcase) side by side (the second would
undo or override the first). Whether a sequence is held out depends only on a hash of the sequence
(HELDOUT_SHARE of each level), so train and held-out never overlap, whatever the seed or count.
The seed chooses which tasks are drawn and the test inputs.

`tasks()` gives the common `Task` records; grading (`crucible.grade.world`) is the whole-program
path, as for puzzles: the program runs in the sandbox on every test input, stdout compared after
stripping surrounding whitespace.

Not covered: other languages (the reference lines are Python), operations with parameters.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import string
from dataclasses import dataclass
from pathlib import Path

from crucible.tasks.common import Task, TaskError, read_task_file, select_tasks

VOWELS = "aeiouAEIOU"
# name -> (what it does, the line of Python that does it). The test below keeps them in agreement.
OPS = {
    "reverse": (lambda s: s[::-1], "s = s[::-1]"),
    "upper": (str.upper, "s = s.upper()"),
    "lower": (str.lower, "s = s.lower()"),
    "swapcase": (str.swapcase, "s = s.swapcase()"),
    "drop-vowels": (lambda s: "".join(c for c in s if c not in VOWELS),
                    "s = ''.join(c for c in s if c not in 'aeiouAEIOU')"),
    "rotate-left": (lambda s: s[1:] + s[:1], "s = s[1:] + s[:1]"),
    "dedupe": (lambda s: "".join(dict.fromkeys(s)), "s = ''.join(dict.fromkeys(s))"),
    "sort": (lambda s: "".join(sorted(s)), "s = ''.join(sorted(s))"),
    "double": (lambda s: "".join(c + c for c in s), "s = ''.join(c + c for c in s)"),
    "evens": (lambda s: s[::2], "s = s[::2]"),
}
CASE_OPS = {"upper", "lower", "swapcase"}
LEVELS = range(1, 6)
SPLITS = ("train", "heldout", "all")
HELDOUT_SHARE = 0.25
N_TESTS = 6
N_VOTE_INPUTS = 4
PROMPT = "Read a line, apply the steps in order, print the result: {steps}\n```python\n"
STOP = ("\n```",)


class WorldError(TaskError):
    """A bad world request or tasks file; the message names the file and line where there is one."""


@dataclass(frozen=True)
class WorldTask:
    ops: tuple[str, ...]
    tests: tuple[tuple[str, str], ...]      # (stdin without newline, expected stdout)
    vote_inputs: tuple[str, ...]            # more inputs, no answers: for behaviour clusters

    @property
    def task_id(self) -> str:
        return f"world/{len(self.ops)}/{'-'.join(self.ops)}"

    @property
    def level(self) -> int:
        return len(self.ops)

    @property
    def prompt(self) -> str:
        return PROMPT.format(steps=", ".join(self.ops))

    @property
    def reference(self) -> str:
        return reference_program(self.ops)

    def to_json(self) -> dict:
        return {"task_id": self.task_id, "ops": list(self.ops), "tests": [list(t) for t in self.tests],
                "vote_inputs": list(self.vote_inputs)}


def reference_program(ops) -> str:
    return "s = input()\n" + "".join(OPS[op][1] + "\n" for op in ops) + "print(s)\n"


def apply_ops(ops, s: str) -> str:
    for op in ops:
        s = OPS[op][0](s)
    return s


def allowed(ops: tuple[str, ...]) -> bool:
    return all(a != b and not (a in CASE_OPS and b in CASE_OPS) for a, b in zip(ops, ops[1:]))


def split_of(ops: tuple[str, ...]) -> str:
    digest = hashlib.sha256(("world\x1f" + "-".join(ops)).encode()).digest()
    return "heldout" if int.from_bytes(digest[:4], "big") < HELDOUT_SHARE * 2 ** 32 else "train"


def sequences(level: int, split: str = "all") -> list[tuple[str, ...]]:
    """Every allowed op sequence of `level` steps in `split`, in a fixed order."""
    if level not in LEVELS:
        raise WorldError(f"level must be in {LEVELS.start}..{LEVELS.stop - 1}, got {level}")
    if split not in SPLITS:
        raise WorldError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return [ops for ops in itertools.product(sorted(OPS), repeat=level)
            if allowed(ops) and split in ("all", split_of(ops))]


def random_input(rng: random.Random) -> str:
    """5–10 letters, vowel-heavy, mixed case, with at least one repeated letter (so dedupe, case and
    vowel steps all change something on most inputs)."""
    letters = string.ascii_letters + VOWELS
    chars = rng.choices(letters, k=rng.randint(5, 10))
    chars.insert(rng.randrange(len(chars) + 1), rng.choice(chars))
    return "".join(chars)


def make_task(ops: tuple[str, ...], seed: int = 0) -> WorldTask:
    rng = random.Random(f"{seed}\x1f{'-'.join(ops)}")
    inputs = [random_input(rng) for _ in range(N_TESTS + N_VOTE_INPUTS)]
    tests = tuple((x, apply_ops(ops, x)) for x in inputs[:N_TESTS])
    return WorldTask(tuple(ops), tests, tuple(inputs[N_TESTS:]))


def generate(levels, *, split: str = "all", count: int | None = None, seed: int = 0) -> list[WorldTask]:
    """Up to `count` tasks per level (all of them when None), drawn by `seed`, in a fixed order."""
    tasks = []
    for level in levels:
        pool = sequences(level, split)
        if count is not None and count < len(pool):
            pool = sorted(random.Random(f"{seed}\x1fdraw\x1f{level}").sample(pool, count))
        tasks += [make_task(ops, seed) for ops in pool]
    return tasks


def corpus_text(task: WorldTask) -> str:
    """A pretraining document: the prompt, the reference program and the closing fence."""
    return task.prompt + task.reference + "```\n"


def load_tasks(path: str | Path) -> list[WorldTask]:
    """World tasks from JSONL (as `to_json` writes them); bad lines raise WorldError (JsonlError for a
    line that is not JSON) naming the file and line."""
    return read_task_file(path, parse_task, lambda t: t.task_id, error=WorldError)


def parse_task(obj: dict, where: str) -> WorldTask:
    ops = obj.get("ops")
    if not isinstance(ops, list) or not ops or not all(op in OPS for op in ops):
        raise WorldError(f"{where}: 'ops' must be a non-empty list of {', '.join(OPS)}")
    tests, votes = obj.get("tests"), obj.get("vote_inputs", [])
    if (not isinstance(tests, list) or not tests
            or not all(isinstance(t, list) and len(t) == 2 and all(isinstance(x, str) for x in t) for t in tests)):
        raise WorldError(f"{where}: 'tests' must be a non-empty list of [input, expected output] strings")
    if not isinstance(votes, list) or not all(isinstance(x, str) for x in votes):
        raise WorldError(f"{where}: 'vote_inputs' must be a list of strings")
    return WorldTask(tuple(ops), tuple(tuple(t) for t in tests), tuple(votes))


def select_world(world: list[WorldTask], ids=None, limit: int | None = None) -> list[WorldTask]:
    return select_tasks(world, ids, limit, unknown=lambda bad: f"--task-ids: unknown world tasks {', '.join(bad)}")


def scope(tasks_file: str | Path | None = None, ids=None, limit: int | None = None) -> list[WorldTask]:
    """The tasks of `tasks_file` (see `crucible world`), else the held-out tasks of levels 1–3 (seed 0,
    at most 50 per level); then --task-ids and --limit."""
    world = load_tasks(tasks_file) if tasks_file else generate(range(1, 4), split="heldout", count=50)
    return select_world(world, ids, limit)


def tasks(world: list[WorldTask]) -> list[Task]:
    """The common Task records (a whole Python program each; difficulty "level N")."""
    return [Task(t.task_id, t.prompt, "python", STOP, difficulty=f"level {t.level}") for t in world]


def reference_samples(world: list[WorldTask]) -> list[dict]:
    return [{"task_id": t.task_id, "language": "python", "completion": t.reference, "sample_index": 0,
             "difficulty": f"level {t.level}"} for t in world]
