"""The answer-checked suite: a reply's final answer, or a program's printed line, against the answer.

Final mode (a task in `PROSE`): the sample's text is parsed (`answer_text.final_answer`) and
compared (`answer_text.same_answer`) in this process: nothing a model wrote is run, so there is no
sandbox and nothing to keep warm. Program mode (a Python task): grading's program
(`crucible.sanitize.extract_program`) runs in the sandbox as a puzzle does (`run_program`); its
stdout, stripped, must be one line, compared with the same normalisation: an answer printed with
other lines fails, as does one that is right only among others.

vote@N: final-mode samples cluster by their normalised answer (`vote_answer`, in-process);
program-mode ones by what they print on an empty stdin (`vote_inputs`), as puzzles do, the printed
answer normalised as grading reads it (`vote_canonical`).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass

from crucible.grade import Verdict, failure_verdict, grade_in_threads, program_hash
from crucible.grade.answer_text import answer_key, final_answer, same_answer
from crucible.languages import PROSE, get, run_program
from crucible.sandbox import Limits
from crucible.sandbox.pyenv import PythonEnv
from crucible.sanitize import extract_program
from crucible.tasks.answers import AnswerTask, task as common_task


@dataclass
class AnswerSuite:
    answer_tasks: list[AnswerTask]
    unsafe: bool = False
    name: str = "answers"
    python_env: PythonEnv | None = None  # packages program-mode programs may import (default: stdlib only)

    def __post_init__(self):
        self.by_id = {t.task_id: t for t in self.answer_tasks}
        self.tasks = [common_task(t) for t in self.answer_tasks]
        self.language_of = {t.task_id: t.language for t in self.tasks}

    def check_sample(self, sample: dict) -> str | None:
        tid = sample.get("task_id")
        if tid not in self.by_id:
            return f"unknown task_id {tid!r} (not a task of this answers suite)"
        if not isinstance(sample.get("completion"), str):
            return "'completion' must be a string"
        want = self.language_of[tid]
        given = sample.setdefault("language", want)
        if isinstance(given, str) and given != PROSE:
            try:
                sample["language"] = get(given).name  # "py", "Python" -> "python"
            except KeyError as e:
                return e.args[0]
        if sample["language"] != want:
            mode = self.by_id[tid].mode
            return (f"task {tid} is answered in {mode} mode (language {want!r}), got language "
                    f"{sample['language']!r}: pass the --answer-mode the samples were made with")
        if self.by_id[tid].difficulty:
            sample.setdefault("difficulty", self.by_id[tid].difficulty)
        return None

    def group(self, sample: dict) -> str:
        return self.language_of[sample["task_id"]]

    def program_key(self, sample: dict) -> str:
        t = self.by_id[sample["task_id"]]
        if self.group(sample) == PROSE:  # the verdict depends on the answer read, not on the words around it
            return program_hash("answers", "final", t.answer, repr(final_answer(sample["completion"])))
        env = (self.python_env.id,) if self.python_env else ()
        return program_hash("answers", "program", t.answer, str(t.timeout_s),
                            extract_program(sample["completion"], "python"), *env)

    def grade_one(self, sample: dict) -> Verdict:
        t = self.by_id[sample["task_id"]]
        if self.group(sample) == PROSE:
            start = time.perf_counter()
            got = final_answer(sample["completion"])
            return judge(got, t.answer, time.perf_counter() - start, "no final answer in the reply")
        out = run_program("python", extract_program(sample["completion"], "python"),
                          limits=Limits(timeout_s=t.timeout_s), unsafe=self.unsafe, python_env=self.python_env)
        if out.status != "ok":
            return failure_verdict(out)
        printed = out.stdout.strip()
        if "\n" in printed:
            return Verdict("wrong_answer", f"printed {printed.count(chr(10)) + 1} lines, expected one", out.wall_s)
        return judge(printed, t.answer, out.wall_s, "printed nothing")

    def grade(self, samples, workers: int, pool=None):
        return grade_in_threads(self.grade_one, samples, workers)

    def pool(self, workers: int):
        return nullcontext()

    def vote_inputs(self, task_id: str) -> list[str]:
        """Program mode: the programs read no input; their printed answer is their behaviour."""
        return [""]

    def vote_canonical(self, outputs: list[str]) -> str | None:
        """Program mode: a printed answer as vote@N compares it (`42` and `42.0` agree); more than
        one line is kept as printed (it fails grading anyway)."""
        [printed] = outputs
        return answer_key(printed) if "\n" not in printed else f"printed:{printed}"

    def vote_answer(self, sample: dict) -> str | None:
        """Final mode: the normalised answer a reply gives (None: it gives none, and does not vote)."""
        return answer_key(final_answer(sample["completion"]))


def judge(got: str | None, expected: str, wall_s: float, empty: str) -> Verdict:
    if not got:
        return Verdict("wrong_answer", empty, wall_s)
    if same_answer(got, expected):
        return Verdict("pass", "", wall_s)
    return Verdict("wrong_answer", f"expected {expected[:60]!r}, got {got[:60]!r}", wall_s)
