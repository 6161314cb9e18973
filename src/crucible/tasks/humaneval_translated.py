"""HumanEval in other languages: translated prompts and tests (see `crucible.tasks.translate`), graded
by compiling and running each program in the sandbox.

A sample is {"task_id", "completion"} (optionally "language"). The program is the prompt + the
completion up to the brace that closes the function (matched, so a dedented chat reply works too;
OCaml: up to the first stop sequence) + the function's closer + the translated tests; a completion
that holds a whole definition of the function (a chat model's fenced block, or our hand-written
references) replaces the prompt instead. Tasks carry "entry_point", so the sampler treats them as
function completions. A failed translated assertion prints a marker
and is a wrong_answer; a crash is a runtime_error; a build failure is a compile_error.

Problems that do not translate to a language are left out of its suite (`crucible.tasks.translate
counts` lists them with the reasons). Reference solutions are hand-written for some problems per
language (`translate/solutions/<language>/`), to validate the translation itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from crucible.grade import Verdict, failure_verdict, grade_in_threads
from crucible.languages import extract_program, get, run_program
from crucible.sandbox import Limits
from crucible.tasks.translate import FAIL_MARK, TARGETS, Translation, Untranslatable, translate

SOLUTIONS = Path(__file__).parent / "translate" / "solutions"
LIMITS = Limits(timeout_s=6.0)   # CPU seconds per program run (JVM start-up included); builds have their own


def humaneval_problems() -> dict[str, dict]:
    from crucible.tasks.humaneval import load_problems

    return load_problems()


@lru_cache(maxsize=None)
def translations(language: str) -> tuple[dict[str, Translation], dict[str, str]]:
    """(task_id -> Translation, task_id -> why it does not translate) for one language."""
    ok, failed = {}, {}
    for tid, problem in humaneval_problems().items():
        try:
            ok[tid] = translate(problem, language)
        except Untranslatable as e:
            failed[tid] = str(e)
    return ok, failed


def canonical(language: str) -> str:
    from crucible.cli import UsageError

    try:
        name = get(language).name
    except KeyError as e:
        raise UsageError(f"--language: {e.args[0]}") from None
    if name not in TARGETS:
        raise UsageError(f"--language {language}: HumanEval is translated to {', '.join(TARGETS)} (and python)")
    return name


@dataclass
class TranslatedSuite:
    language: str
    task_ids: list[str]
    unsafe: bool = False
    limits: Limits = field(default_factory=lambda: LIMITS)

    def __post_init__(self):
        self.name = f"humaneval-{self.language}"
        self.translated, self.untranslated = translations(self.language)
        # entry_point marks a function-completion task for the sampler (chat replies become bodies)
        self.tasks = [{"task_id": t, "language": self.language, "prompt": self.translated[t].prompt,
                       "stop": list(self.translated[t].stop), "entry_point": self.translated[t].name}
                      for t in self.task_ids]

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
        from crucible.grade.runner import program_hash

        return program_hash("humaneval-translated", self.language, sample["task_id"], self.program(sample))

    def grade_one(self, sample: dict) -> Verdict:
        out = run_program(self.language, self.program(sample), limits=self.limits, unsafe=self.unsafe)
        if out.status == "ok":
            return Verdict("pass", "", out.wall_s)
        if out.status == "runtime_error" and FAIL_MARK in out.stderr:
            line = next(ln for ln in out.stderr.splitlines() if FAIL_MARK in ln)
            return Verdict("wrong_answer", f"test #{line.split(FAIL_MARK, 1)[1].strip()} failed", out.wall_s)
        return failure_verdict(out)

    def grade(self, samples, workers: int):
        return grade_in_threads(self.grade_one, samples, workers)


def load_suite(args) -> TranslatedSuite:
    from crucible.cli import UsageError

    language = canonical(getattr(args, "language", None) or "")
    translated, untranslated = translations(language)
    ids = list(translated)
    wanted = getattr(args, "task_ids", None)
    if wanted:
        wanted = [t.strip() for t in (wanted.split(",") if isinstance(wanted, str) else wanted) if t.strip()]
        bad = [t for t in wanted if t not in translated]
        if bad:
            reasons = "; ".join(f"{t}: {untranslated.get(t, 'unknown task')}" for t in bad)
            raise UsageError(f"--task-ids: not available in {language}: {reasons}")
        ids = [t for t in ids if t in set(wanted)]
    limit = getattr(args, "limit", None)
    if limit is not None:
        ids = ids[:limit]
    return TranslatedSuite(language, ids, unsafe=bool(getattr(args, "unsafe_no_sandbox", False)))


def reference_files(language: str) -> dict[str, Path]:
    """task_id -> hand-written reference solution (a whole function definition) for `language`."""
    folder = SOLUTIONS / language
    if not folder.is_dir():
        return {}
    return {f"HumanEval/{int(f.stem.split('_')[-1])}": f for f in sorted(folder.iterdir()) if f.is_file()}


def reference_samples(args) -> list[dict]:
    suite = load_suite(args)
    scope = set(suite.task_ids)
    return [{"task_id": tid, "language": suite.language, "completion": path.read_text(encoding="utf-8"),
             "sample_index": 0}
            for tid, path in reference_files(suite.language).items() if tid in scope]


def counts() -> dict[str, dict]:
    """Per language: how many of the 164 translate, and why the others do not."""
    out = {}
    for lang in TARGETS:
        ok, failed = translations(lang)
        out[lang] = {"translated": len(ok), "total": len(ok) + len(failed), "untranslated": failed}
    return out
