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

Samples are JSONL {"task_id", "language", "completion"}; the program is the completion's fenced block
for that language if it has one, else the whole completion. One task per (puzzle, language): the
report breaks everything down by language.

Not covered: puzzles that read input, and answers that need a tolerance (use exact formats instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crucible.grade import Verdict, failure_verdict, grade_in_threads
from crucible.grade.runner import jsonl_objects
from crucible.languages import all_languages, extract_program, get, run_program
from crucible.sandbox import Limits
from crucible.sandbox.pyenv import PythonEnv, from_args

DATA = Path(__file__).parent / "data"
BUNDLED = DATA / "puzzles.jsonl"
SOLUTIONS = DATA / "puzzle_solutions"
DIFFICULTIES = ("easy", "medium", "hard")
DEFAULT_TIMEOUT_S = 10.0
PROMPT = ("Solve this puzzle with a complete {title} program{toolchain}. The program reads no input and prints only the "
          "answer, on a single line, to standard output.\n\nPuzzle ({difficulty}): {statement}\n\n```{tag}\n")
STOP = ("\n```",)


def load_puzzles(path: str | Path | None = None) -> list[dict]:
    """Read and validate a puzzles JSONL; bad input raises UsageError naming the file and line."""
    from crucible.cli import UsageError

    path = Path(path) if path else BUNDLED
    if not path.is_file():
        raise UsageError(f"{path}: no such tasks file")
    puzzles, seen = [], set()
    for lineno, p in jsonl_objects(path):
        where = f"{path}:{lineno}"
        for key in ("id", "prompt", "answer"):
            if not isinstance(p.get(key), str) or not p[key].strip():
                raise UsageError(f"{where}: {key!r} must be a non-empty string")
        if p.get("difficulty") not in DIFFICULTIES:
            raise UsageError(f"{where}: 'difficulty' must be one of {', '.join(DIFFICULTIES)}, "
                             f"got {p.get('difficulty')!r}")
        t = p.get("timeout_s", DEFAULT_TIMEOUT_S)
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= 600:
            raise UsageError(f"{where}: 'timeout_s' must be a number of seconds in (0, 600], got {t!r}")
        if p["id"] in seen:
            raise UsageError(f"{where}: duplicate id {p['id']!r}")
        seen.add(p["id"])
        puzzles.append({**p, "timeout_s": float(t)})
    if not puzzles:
        raise UsageError(f"{path}: no puzzles")
    return puzzles


def prompt_for(puzzle: dict, language: str) -> str:
    lang = get(language)
    version = lang.version() if lang.ready() else None  # APIs move (Zig, Kotlin): say which one runs it
    toolchain = f" (built and run with {lang.tool} {version})" if version and lang.tool else ""
    return PROMPT.format(title=lang.title, toolchain=toolchain, difficulty=puzzle["difficulty"],
                         statement=puzzle["prompt"], tag=lang.fence_tags[0])


def parse_languages(text: str | None) -> list[str]:
    """'python,rust' -> canonical names; 'all' -> every ready language."""
    from crucible.cli import UsageError

    if not text or text.strip() == "all":
        return [l.name for l in all_languages() if l.ready()]
    names = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            names.append(get(part).name)
        except KeyError as e:
            raise UsageError(f"--language: {e.args[0]}") from None
    return list(dict.fromkeys(names))


@dataclass
class PuzzleSuite:
    puzzles: list[dict]
    languages: list[str]
    unsafe: bool = False
    name: str = "puzzles"
    python_env: PythonEnv | None = None  # packages Python programs may import (default: stdlib only)

    def __post_init__(self):
        self.by_id = {p["id"]: p for p in self.puzzles}
        self.tasks = [{"task_id": p["id"], "language": lang, "prompt": prompt_for(p, lang), "stop": list(STOP),
                       "difficulty": p["difficulty"]} for p in self.puzzles for lang in self.languages]

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
        from crucible.grade.runner import program_hash

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

    def grade(self, samples, workers: int):
        return grade_in_threads(self.grade_one, samples, workers)


def _scope(puzzles: list[dict], args) -> list[dict]:
    ids = getattr(args, "task_ids", None)
    if ids:
        wanted = [t.strip() for t in ids.split(",") if t.strip()]
        known = {p["id"] for p in puzzles}
        unknown = [t for t in wanted if t not in known]
        if unknown:
            from crucible.cli import UsageError

            raise UsageError(f"--task-ids: unknown puzzle ids {', '.join(unknown)}")
        puzzles = [p for p in puzzles if p["id"] in set(wanted)]
    limit = getattr(args, "limit", None)
    return puzzles[:limit] if limit else puzzles


def load_suite(args) -> PuzzleSuite:
    puzzles = _scope(load_puzzles(getattr(args, "tasks", None)), args)
    return PuzzleSuite(puzzles, parse_languages(getattr(args, "language", None) or "all"),
                       unsafe=bool(getattr(args, "unsafe_no_sandbox", False)), python_env=from_args(args))


def reference_files() -> dict[tuple[str, str], Path]:
    """(puzzle id, language) -> reference solution file, for the bundled puzzles."""
    out = {}
    for lang_dir in sorted(SOLUTIONS.iterdir()):
        if lang_dir.is_dir():
            lang = get(lang_dir.name).name
            for f in sorted(lang_dir.iterdir()):
                out[(f.stem, lang)] = f
    return out


def reference_samples(args) -> list[dict]:
    """The reference solutions of the puzzles in scope, in the languages asked for (all by default)."""
    suite = load_suite(args)
    langs = set(suite.languages)
    samples = []
    for (pid, lang), path in reference_files().items():
        if pid in suite.by_id and lang in langs:
            samples.append({"task_id": pid, "language": lang, "completion": path.read_text(),
                            "difficulty": suite.by_id[pid]["difficulty"], "sample_index": 0})
    return samples
