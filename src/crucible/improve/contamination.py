"""Contamination check: does a mined sample reproduce an eval suite's prompt or reference solution?

Why: a model trained on what it is then evaluated on shows a gain that is not one. Mining writes
training data from the model's own verified samples, and a sample can copy an eval solution (the
model memorised it, or a mined task is an eval task under another id).

An eval text is an eval task's prompt or one of its reference solutions. A mined sample is
flagged when
- its normalised prompt equals an eval prompt, or its normalised program equals an eval solution
  (`normalise`: Python through the ast, comments and layout gone; other text whitespace-squeezed), or
- the share of an eval text's token N-grams (N = 13, GPT-3's choice; tokens are words and single
  punctuation marks) found in the sample's prompt (for eval prompts) or program (for eval
  solutions) is at least THRESHOLD. Eval texts with fewer than MIN_GRAMS N-grams get the exact
  check only: a 15-token program is "contained" in any longer one that includes its lines.

The threshold is high on purpose. Templated tasks share most of their text: on the task world, the
level-3 train tasks' programs reach at most 0.84 of a level-3 held-out solution's 13-grams (0.93
against level 4), while a copy reaches 1.0. Lower it for free-form suites.

Not covered: paraphrases, renamed identifiers, translations into another language.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass

N = 13
THRESHOLD = 0.9
MIN_GRAMS = 8
TOKEN = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class EvalText:
    suite: str
    task_id: str
    kind: str        # "prompt" or "solution"
    text: str


def normalise(text: str, language: str = "python") -> str:
    """Python: the ast's own rendering (comments and layout gone); otherwise squeezed whitespace."""
    if language == "python":
        try:
            return ast.unparse(ast.parse(text))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            pass
    return " ".join(text.split())


def ngrams(text: str, n: int = N) -> set[tuple[str, ...]]:
    tokens = TOKEN.findall(text)
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


class ContaminationIndex:
    """Eval texts indexed by N-gram and by normalised text; `matches` checks one mined sample."""

    def __init__(self, texts: list[EvalText], *, n: int = N, threshold: float = THRESHOLD,
                 min_grams: int = MIN_GRAMS):
        self.texts, self.n, self.threshold, self.min_grams = texts, n, threshold, min_grams
        self.exact: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.by_gram: dict[tuple[str, ...], list[int]] = defaultdict(list)
        self.sizes: list[int] = []
        for i, t in enumerate(texts):
            self.exact[(t.kind, normalise(t.text))].append(i)
            grams = ngrams(t.text, n)
            self.sizes.append(len(grams))
            if len(grams) >= min_grams:
                for g in grams:
                    self.by_gram[g].append(i)

    def matches(self, prompt: str, program: str) -> list[dict]:
        """Every eval text this sample reproduces: {"suite", "task_id", "kind", "overlap"}."""
        found: dict[int, float] = {}
        for kind, text in (("prompt", prompt), ("solution", program)):
            for i in self.exact.get((kind, normalise(text)), []):
                found[i] = 1.0
            hits: dict[int, int] = defaultdict(int)
            for g in ngrams(text, self.n):
                for i in self.by_gram.get(g, ()):
                    if self.texts[i].kind == kind:
                        hits[i] += 1
            for i, h in hits.items():
                share = h / self.sizes[i]
                if share >= self.threshold:
                    found[i] = max(found.get(i, 0.0), share)
        return [{"suite": self.texts[i].suite, "task_id": self.texts[i].task_id, "kind": self.texts[i].kind,
                 "overlap": round(share, 3)} for i, share in sorted(found.items())]


def bundled_eval_texts(world_levels=()) -> list[EvalText]:
    """Prompts and reference solutions of the bundled eval suites: HumanEval (prompts and canonical
    solutions), puzzles (statements, Python and Go references) and the task world's held-out tasks
    of `world_levels` (those of the tasks mined: a level-3 program contains most of a level-2 one)."""
    from crucible.tasks import world
    from crucible.tasks.humaneval import load_problems
    from crucible.tasks.puzzles import load_puzzles, reference_files

    texts = []
    for p in load_problems().values():
        texts.append(EvalText("humaneval", p["task_id"], "prompt", p["prompt"]))
        texts.append(EvalText("humaneval", p["task_id"], "solution", p["prompt"] + p["canonical_solution"]))
    for p in load_puzzles():
        texts.append(EvalText("puzzles", p["id"], "prompt", p["prompt"]))
    for (pid, _), path in reference_files().items():
        texts.append(EvalText("puzzles", pid, "solution", path.read_text(encoding="utf-8")))
    if world_levels:
        texts += world_eval_texts(world.generate(sorted(world_levels), split="heldout"))
    return texts


def world_eval_texts(tasks) -> list[EvalText]:
    return [EvalText("world", t.task_id, kind, text) for t in tasks
            for kind, text in (("prompt", t.prompt), ("solution", t.reference))]


def answer_eval_texts(tasks) -> list[EvalText]:
    """The prompts of answer-checked eval tasks (`crucible.tasks.answers`) in both modes: a question
    mined in one mode is the same question in the other. Not their answers or worked solutions: two
    different questions share "#### 42", and generated ones share the arithmetic of their steps."""
    from dataclasses import replace

    from crucible.tasks import answers

    return [EvalText("answers", t.task_id, "prompt", answers.task(replace(t, mode=mode)).prompt)
            for t in tasks for mode in answers.MODES]
