"""HumanEval in another language: each completion compiled and run with the translated tests.

A sample is {"task_id", "completion"} (optionally "language"). The program is the prompt + the
completion up to the brace that closes the function (matched, so a dedented chat reply works too;
OCaml: up to the first stop sequence) + the function's closer + the translated tests; a completion
that holds a whole definition of the function (a chat model's fenced block, or our hand-written
references) replaces the prompt instead (`Translation.program`). A failed translated assertion
prints a marker and is a wrong_answer; a crash is a runtime_error; a build failure is a
compile_error. Each sample is one sandboxed build-and-run: nothing to keep warm across calls.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

from crucible.grade import Verdict, failure_verdict, grade_in_threads, program_hash
from crucible.languages import get, run_program
from crucible.sandbox import Limits
from crucible.sanitize import extract_program
from crucible.tasks.common import Task
from crucible.tasks.humaneval_translated import translations
from crucible.tasks.translate.render import FAIL_MARK

LIMITS = Limits(timeout_s=6.0)   # CPU seconds per program run (JVM start-up included); builds have their own


@dataclass
class TranslatedSuite:
    language: str
    tasks: list[Task]
    unsafe: bool = False
    limits: Limits = field(default_factory=lambda: LIMITS)

    def __post_init__(self):
        self.name = f"humaneval-{self.language}"
        self.translated, self.untranslated = translations(self.language)

    def check_sample(self, sample: dict) -> str | None:
        tid = sample.get("task_id")
        if tid in self.untranslated:
            return f"{tid} is not translated to {self.language}: {self.untranslated[tid]}"
        if tid not in self.translated:
            return f"unknown task_id {tid!r}"
        if not isinstance(sample.get("completion"), str):
            return "'completion' must be a string"
        lang = sample.get("language")
        if lang is not None:
            try:
                if get(lang).name != self.language:
                    return f"sample is {lang}, this suite is {self.language}"
            except KeyError as e:
                return e.args[0]
        return None

    def group(self, sample: dict) -> str:
        return self.language

    def program(self, sample: dict) -> str:
        code = extract_program(sample["completion"], self.language)
        return self.translated[sample["task_id"]].program(code)

    def program_key(self, sample: dict) -> str:
        return program_hash("humaneval-translated", self.language, sample["task_id"], self.program(sample))

    def grade_one(self, sample: dict) -> Verdict:
        out = run_program(self.language, self.program(sample), limits=self.limits, unsafe=self.unsafe)
        if out.status == "ok":
            return Verdict("pass", "", out.wall_s)
        if out.status == "runtime_error" and FAIL_MARK in out.stderr:
            line = next(ln for ln in out.stderr.splitlines() if FAIL_MARK in ln)
            return Verdict("wrong_answer", f"test #{line.split(FAIL_MARK, 1)[1].strip()} failed", out.wall_s)
        return failure_verdict(out)

    def grade(self, samples, workers: int, pool=None):
        return grade_in_threads(self.grade_one, samples, workers)

    def pool(self, workers: int):
        return nullcontext()
