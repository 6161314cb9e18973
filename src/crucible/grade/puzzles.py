"""The puzzle suite: a whole program per (puzzle, language), its printed line compared with the answer.

The program is grading's rule (`crucible.sanitize.extract_program`): the completion's fenced block
for that language if it has one, else the whole completion. The answer is compared after stripping
surrounding whitespace. Each sample is one sandboxed build-and-run (`crucible.languages`), so there
is nothing to keep warm across calls.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

from crucible.grade import Verdict, failure_verdict, grade_in_threads, program_hash
from crucible.languages import get, run_program
from crucible.sandbox import Limits
from crucible.sandbox.pyenv import PythonEnv
from crucible.sanitize import extract_program
from crucible.tasks.puzzles import tasks as puzzle_tasks


@dataclass
class PuzzleSuite:
    puzzles: list[dict]
    languages: list[str]
    unsafe: bool = False
    name: str = "puzzles"
    python_env: PythonEnv | None = None  # packages Python programs may import (default: stdlib only)

    def __post_init__(self):
        self.by_id = {p["id"]: p for p in self.puzzles}
        self.tasks = puzzle_tasks(self.puzzles, self.languages)

    def check_sample(self, sample: dict) -> str | None:
        tid = sample.get("task_id")
        if tid not in self.by_id:
            return f"unknown task_id {tid!r} (not a puzzle of this suite)"
        if not isinstance(sample.get("completion"), str):
            return "'completion' must be a string"
        if not isinstance(sample.get("language"), str):
            return "'language' is required (e.g. \"rust\")"
        try:
            lang = get(sample["language"])
        except KeyError as e:
            return e.args[0]
        # Rows carry the difficulty so reports can break results down by it.
        sample.setdefault("difficulty", self.by_id[tid]["difficulty"])
        sample["language"] = lang.name
        return None

    def group(self, sample: dict) -> str:
        return get(sample["language"]).name

    def program_key(self, sample: dict) -> str:
        lang = self.group(sample)
        puzzle = self.by_id[sample["task_id"]]
        env = (self.python_env.id,) if self.python_env and lang == "python" else ()  # verdicts hold per env
        return program_hash("puzzles", puzzle["id"], puzzle["answer"], str(puzzle["timeout_s"]), lang,
                            extract_program(sample["completion"], lang), *env)

    def grade_one(self, sample: dict) -> Verdict:
        lang = self.group(sample)
        puzzle = self.by_id[sample["task_id"]]
        program = extract_program(sample["completion"], lang)
        out = run_program(lang, program, limits=Limits(timeout_s=puzzle["timeout_s"]), unsafe=self.unsafe,
                          python_env=self.python_env)
        if out.status == "ok":
            got, want = out.stdout.strip(), puzzle["answer"].strip()
            if got == want:
                return Verdict("pass", "", out.wall_s)
            return Verdict("wrong_answer", f"expected {want[:60]!r}, got {got[:60]!r}", out.wall_s)
        return failure_verdict(out)

    def grade(self, samples, workers: int, pool=None):
        return grade_in_threads(self.grade_one, samples, workers)

    def pool(self, workers: int):
        return nullcontext()
