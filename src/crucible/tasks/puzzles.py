"""Project-Euler-like puzzles in many languages: one program, one line printed, compared to the answer.

Why: "can this model write code in *my* language, and how often first try vs in k tries" needs tasks
whose statement is language-neutral and whose check is language-independent. A puzzle is solved by a
whole program that prints one line; the answer is compared after stripping surrounding whitespace.

The bundled suite (`data/puzzles.jsonl`, 35 puzzles written for this project, easy/medium/hard) has
big-integer puzzles, puzzles whose naive solution times out (N = 10^12, n = 5*10^6 ...), and puzzles
with exact output formats (fractions, fixed decimals, thousands separators, leading zeros). Every
answer is produced by the reference solutions in `data/puzzle_solutions/{python,go}/`, which the tests
run. Users bring their own with `--tasks FILE` (same JSONL: id, prompt, answer, difficulty,
optional timeout_s).

Samples are JSONL {"task_id", "language", "completion"}; grading is `crucible.grade.puzzles`. One task
per (puzzle, language): the report breaks everything down by language.

Not covered: puzzles that read input, and answers that need a tolerance (use exact formats instead).
"""

from __future__ import annotations

from pathlib import Path

from crucible.languages import all_languages, get
from crucible.tasks.common import Task, TaskError, read_task_file, require_strings, select_tasks, timeout_of

DATA = Path(__file__).parent / "data"
BUNDLED = DATA / "puzzles.jsonl"
SOLUTIONS = DATA / "puzzle_solutions"
DIFFICULTIES = ("easy", "medium", "hard")
DEFAULT_TIMEOUT_S = 10.0
PROMPT = ("Solve this puzzle with a complete {title} program{toolchain}. The program reads no input and prints only the "
          "answer, on a single line, to standard output.\n\nPuzzle ({difficulty}): {statement}\n\n```{tag}\n")
STOP = ("\n```",)


def load_puzzles(path: str | Path | None = None) -> list[dict]:
    """Read and validate a puzzles JSONL; bad input raises TaskError (or JsonlError) naming the file and line."""
    return read_task_file(path or BUNDLED, check_puzzle, lambda p: p["id"], noun="puzzles")


def check_puzzle(p: dict, where: str) -> dict:
    require_strings(p, ("id", "prompt", "answer"), where)
    if p.get("difficulty") not in DIFFICULTIES:
        raise TaskError(f"{where}: 'difficulty' must be one of {', '.join(DIFFICULTIES)}, got {p.get('difficulty')!r}")
    return {**p, "timeout_s": timeout_of(p, where, DEFAULT_TIMEOUT_S)}


def select_puzzles(puzzles: list[dict], ids=None, limit: int | None = None) -> list[dict]:
    return select_tasks(puzzles, ids, limit, key=lambda p: p["id"],
                        unknown=lambda bad: f"--task-ids: unknown puzzle ids {', '.join(bad)}")


def prompt_for(puzzle: dict, language: str) -> str:
    lang = get(language)
    version = lang.version() if lang.ready() else None  # APIs move (Zig, Kotlin): say which one runs it
    toolchain = f" (built and run with {lang.tool} {version})" if version and lang.tool else ""
    return PROMPT.format(title=lang.title, toolchain=toolchain, difficulty=puzzle["difficulty"],
                         statement=puzzle["prompt"], tag=lang.fence_tags[0])


def parse_languages(text: str | None) -> list[str]:
    """'python,rust' -> canonical names; 'all' -> every ready language."""
    if not text or text.strip() == "all":
        return [l.name for l in all_languages() if l.ready()]
    names = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            names.append(get(part).name)
        except KeyError as e:
            raise TaskError(f"--language: {e.args[0]}") from None
    return list(dict.fromkeys(names))


def tasks(puzzles: list[dict], languages: list[str]) -> list[Task]:
    """One task per (puzzle, language), puzzle-major."""
    return [Task(p["id"], prompt_for(p, lang), lang, STOP, answer=p["answer"], difficulty=p["difficulty"])
            for p in puzzles for lang in languages]


def reference_files() -> dict[tuple[str, str], Path]:
    """(puzzle id, language) -> reference solution file, for the bundled puzzles."""
    out = {}
    for lang_dir in sorted(SOLUTIONS.iterdir()):
        if lang_dir.is_dir():
            lang = get(lang_dir.name).name
            for f in sorted(lang_dir.iterdir()):
                out[(f.stem, lang)] = f
    return out


def reference_samples(puzzles: list[dict], languages: list[str]) -> list[dict]:
    """The reference solutions of `puzzles` in `languages` (those that have one)."""
    by_id = {p["id"]: p for p in puzzles}
    samples = []
    for (pid, lang), path in reference_files().items():
        if pid in by_id and lang in languages:
            samples.append({"task_id": pid, "language": lang, "completion": path.read_text(),
                            "difficulty": by_id[pid]["difficulty"], "sample_index": 0})
    return samples
