"""HumanEval in other languages: translated prompts and tests (see `crucible.tasks.translate`).

A task's prompt is the translated signature and doc comment, open for the body; its stop set is
the translation's; its `entry_point` makes it a function completion. How a completion becomes a
test program is `Translation.program`; grading is `crucible.grade.translated`.

Problems that do not translate to a language are left out of its tasks (`crucible.tasks.translate
counts` lists them with the reasons). Reference solutions are hand-written for some problems per
language (`translate/solutions/<language>/`), to validate the translation itself.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from crucible.languages import get
from crucible.tasks.common import Task, TaskError, select_tasks
from crucible.tasks.humaneval import load_problems
from crucible.tasks.translate import TARGETS, translate
from crucible.tasks.translate.program import Translation
from crucible.tasks.translate.types import Untranslatable

SOLUTIONS = Path(__file__).parent / "translate" / "solutions"


@lru_cache(maxsize=None)
def translations(language: str) -> tuple[dict[str, Translation], dict[str, str]]:
    """(task_id -> Translation, task_id -> why it does not translate) for one language."""
    ok, failed = {}, {}
    for tid, problem in load_problems().items():
        try:
            ok[tid] = translate(problem, language)
        except Untranslatable as e:
            failed[tid] = str(e)
    return ok, failed


def canonical(language: str) -> str:
    """The language's canonical name, if HumanEval is translated to it (TaskError otherwise)."""
    try:
        name = get(language).name
    except KeyError as e:
        raise TaskError(f"--language: {e.args[0]}") from None
    if name not in TARGETS:
        raise TaskError(f"--language {language}: HumanEval is translated to {', '.join(TARGETS)} (and python)")
    return name


def tasks(language: str, ids=None, limit: int | None = None) -> list[Task]:
    """The translated tasks in scope (ids that are not translated raise TaskError with the reasons)."""
    language = canonical(language)
    translated, untranslated = translations(language)
    every = [Task(tid, t.prompt, language, tuple(t.stop), entry_point=t.name) for tid, t in translated.items()]
    return select_tasks(every, ids, limit, unknown=lambda bad: (
        f"--task-ids: not available in {language}: "
        + "; ".join(f"{t}: {untranslated.get(t, 'unknown task')}" for t in bad)))


def reference_files(language: str) -> dict[str, Path]:
    """task_id -> hand-written reference solution (a whole function definition) for `language`."""
    folder = SOLUTIONS / language
    if not folder.is_dir():
        return {}
    return {f"HumanEval/{int(f.stem.split('_')[-1])}": f for f in sorted(folder.iterdir()) if f.is_file()}


def reference_samples(scope: list[Task]) -> list[dict]:
    """The hand-written references of the tasks in scope, as samples."""
    if not scope:
        return []
    language = scope[0].language
    ids = {t.task_id for t in scope}
    return [{"task_id": tid, "language": language, "completion": path.read_text(encoding="utf-8"),
             "sample_index": 0}
            for tid, path in reference_files(language).items() if tid in ids]


def counts() -> dict[str, dict]:
    """Per language: how many of the 164 translate, and why the others do not."""
    out = {}
    for lang in TARGETS:
        ok, failed = translations(lang)
        out[lang] = {"translated": len(ok), "total": len(ok) + len(failed), "untranslated": failed}
    return out
