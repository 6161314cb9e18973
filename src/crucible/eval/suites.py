"""Suites by name: what `crucible eval SUITE` (and anything else that names a suite) grades against.

    humaneval                 HumanEval in Python (language python/py), or the HumanEval-format
                              problems of `tasks_file`; else translated to `language`
    puzzles                   the bundled puzzles, or those of `tasks_file`, in `language` (a comma list
                              or "all" ready languages)
    world                     generated "transform a string" tasks (`crucible world`) from `tasks_file`,
                              else the held-out tasks of levels 1-3
    answers                   answer-checked questions from `tasks_file`, else the held-out arithmetic
                              word problems of levels 1-3 (`crucible world --family arithmetic`); each
                              task's mode, or `answer_mode` for all (final: a reply in words; program:
                              a Python program printing the answer)

`load_suite` returns the suite with its tasks in scope and a function giving its reference samples.
Bad names, languages or ids raise TaskError (JsonlError for an unreadable tasks file).
"""

from __future__ import annotations

from collections.abc import Callable

from crucible.tasks.common import TaskError

SUITES = ("humaneval", "puzzles", "world", "answers")


def load_suite(name: str, *, language: str | None = "python", tasks_file: str | None = None, task_ids=None,
               limit: int | None = None, unsafe: bool = False,
               python_env=None, answer_mode: str | None = None) -> tuple[object, Callable[[], list[dict]]]:
    """`python_env` (a `crucible.sandbox.pyenv.PythonEnv`): packages Python programs may import;
    `answer_mode` (answers only): "final" or "program" for every task, else each task's own."""
    if answer_mode is not None and name != "answers":
        raise TaskError(f"--answer-mode applies to the answers suite, not {name}")
    if name == "puzzles":
        from crucible.grade.puzzles import PuzzleSuite
        from crucible.tasks import puzzles

        scope = puzzles.select_puzzles(puzzles.load_puzzles(tasks_file), task_ids, limit)
        languages = puzzles.parse_languages(language or "all")
        suite = PuzzleSuite(scope, languages, unsafe, python_env=python_env)
        return suite, lambda: puzzles.reference_samples(scope, languages)
    if name == "world":
        from crucible.grade.world import WorldSuite
        from crucible.tasks import world

        if python_env is not None:
            raise TaskError("--python-env: world programs run with the standard library only")
        scope = world.scope(tasks_file, task_ids, limit)
        return WorldSuite(scope, unsafe), lambda: world.reference_samples(scope)
    if name == "answers":
        from crucible.grade.answers import AnswerSuite
        from crucible.tasks import answers

        scope = answers.scope(tasks_file, task_ids, limit, answer_mode)
        return AnswerSuite(scope, unsafe, python_env=python_env), lambda: answers.reference_samples(scope)
    if name != "humaneval":
        raise TaskError(f"unknown suite {name!r}; known: {', '.join(SUITES)}")
    if language in (None, "python", "py"):
        from crucible.grade.humaneval.suite import HumanEvalSuite
        from crucible.tasks import humaneval

        problems = humaneval.load_problems(tasks_file) if tasks_file else None
        tasks = humaneval.tasks(task_ids, limit, problems)
        return (HumanEvalSuite(tasks, unsafe=unsafe, python_env=python_env, problems=problems),
                lambda: humaneval.reference_samples(tasks, problems))
    if tasks_file:
        raise TaskError("--tasks: a HumanEval tasks file is Python only (--language python)")
    from crucible.grade.translated import TranslatedSuite
    from crucible.tasks import humaneval_translated

    language = humaneval_translated.canonical(language)
    tasks = humaneval_translated.tasks(language, task_ids, limit)
    return TranslatedSuite(language, tasks, unsafe), lambda: humaneval_translated.reference_samples(tasks)
