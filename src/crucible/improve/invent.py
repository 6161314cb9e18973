"""Problems a model writes itself: kept only when its reference passes its tests and a mutant fails them.

Why: issue 15's task sources. A capable model can write more practice problems than any bundled
suite has, but a model-written problem is worth training or evaluating on only when it is right
(its reference solution passes its own tests) and its tests check something (a slightly wrong
reference fails them: `crucible.improve.mutants`). Both are checked IN THE SANDBOX, through
HumanEval's judge (`crucible.grade.humaneval`): the reference and each mutant are candidates.

The model is shown a fixed few-shot prompt and a topic (sample i gets TOPICS[i % len], for
variety) and answers with two ```python blocks: the function (signature, docstring, reference
body) and `def check(candidate):` with assert lines — HumanEval's shape. `parse` is strict;
anything else is rejected with its reason. A kept problem is a HumanEval-format row (task_id,
prompt = imports + signature + docstring, entry_point, canonical_solution = the body after the
docstring, test), so `crucible eval humaneval --tasks DIR/problems.jsonl` and `crucible mine` use
it as a suite.

Checks, cheapest first; the first that fails is the recorded reason (REASONS):
  unparseable, too few asserts (< min_asserts in check), unsafe for the judge (see below),
  contaminated (`contamination.ContaminationIndex` over the bundled eval suites), duplicate (the
  normalised prompt of a kept problem), reference fails (its verdict in the sandbox), no mutants
  (nothing to mutate), tests kill no mutant (every mutant passed).

"Unsafe for the judge": HumanEval's judge runs a problem's prompt and `check` in its own process,
outside the sandbox (it trusts the dataset; see grade/humaneval/judge.py). A model-written problem
is not trusted, so it is kept only when that side is inert: the prompt is imports of a few stdlib
modules and one undecorated def whose defaults are literals and whose annotations are names; the
test is one `check(candidate)` of assert statements built from literals, `candidate(...)`,
comparisons, boolean and + - / arithmetic, subscripts and a few pure builtins (SAFE_CALLS) — no
attributes, loops, lambdas or comprehensions. The reference's body runs only in the sandbox and
may do anything there.

Files in DIR (append-only, flushed; a killed run resumes and skips decided sample indexes):
samples.jsonl (the model's replies), problems.jsonl (kept), rejected.jsonl (each rejection with
reason and detail), sampling.json (`crucible.eval.settings`: the settings guard), invent.json (the
summary). A reference that hit a sandbox_error (infrastructure) is left undecided: rerun.

Not covered: problems in other languages, functions of classes, tests that need helpers or loops,
semantic duplicates (the same problem in other words), equivalent mutants (see mutants.py).
"""

from __future__ import annotations

import ast
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from crucible.improve.contamination import normalise
from crucible.improve.mutants import mutants
from crucible.sanitize import fenced_blocks, strip_thinking

MIN_ASSERTS = 3
CHUNK = 16  # samples drawn, then graded, per step: a killed run loses at most this much grading
PROBLEMS, REJECTED, SUMMARY = "problems.jsonl", "rejected.jsonl", "invent.json"
REASONS = ("unparseable", "too few asserts", "unsafe for the judge", "contaminated", "duplicate",
           "reference fails", "no mutants", "tests kill no mutant")
TOPICS = ("string manipulation", "lists of integers", "dictionaries and counting", "number theory",
          "sorting and ordering", "parsing simple text formats", "intervals and ranges", "grids as lists of lists",
          "prefix sums and running totals", "sets and membership", "dates given as strings", "binary and bit tricks",
          "words and sentences", "simple simulations", "stacks and brackets", "geometry with integer points")
ALLOWED_IMPORTS = ("math", "re", "string", "itertools", "collections", "functools", "heapq", "bisect", "typing")
SAFE_CALLS = ("candidate", "abs", "len", "sorted", "set", "frozenset", "list", "tuple", "dict", "round", "int",
              "float", "str", "bool", "all", "any", "sum", "min", "max", "isinstance")
SAFE_NODES = (ast.Assert, ast.Constant, ast.Name, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.Compare, ast.BoolOp,
              ast.UnaryOp, ast.BinOp, ast.Call, ast.keyword, ast.Subscript, ast.Slice, ast.expr_context, ast.cmpop,
              ast.boolop, ast.unaryop, ast.Add, ast.Sub, ast.Div)

EXAMPLE = '''Topic: string manipulation
```python
def count_vowels(text: str) -> int:
    """Return how many characters of text are vowels (a, e, i, o or u, in either case).
    >>> count_vowels("Hello")
    2
    """
    return sum(ch in "aeiouAEIOU" for ch in text)
```
```python
def check(candidate):
    assert candidate("Hello") == 2
    assert candidate("") == 0
    assert candidate("AEIOU xyz") == 5
    assert candidate("rhythm") == 0
```
'''
INSTRUCTIONS = ("Write a new, self-contained Python programming problem on the given topic. Answer with two "
                "```python blocks: first the function (imports, signature, a docstring that fully specifies it, "
                f"then a correct body), then `def check(candidate):` with at least {MIN_ASSERTS} assert lines "
                "comparing candidate(...) with literal expected values, edge cases included.")


class Rejected(Exception):
    """A response that is not kept: `reason` is one of REASONS, `detail` says why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class Problem:
    entry_point: str
    prompt: str                 # imports, signature and docstring: what a solver sees
    canonical_solution: str     # the reference body after the docstring
    test: str                   # def check(candidate): ...
    function: ast.FunctionDef   # the parsed reference, for mutants


def topic(index: int) -> str:
    return TOPICS[index % len(TOPICS)]


def base_prompt(index: int) -> str:
    """What a base model continues for sample `index`: instructions, the example, the topic, a fence."""
    return f"{INSTRUCTIONS}\n\n{EXAMPLE}\nTopic: {topic(index)}\n```python\n"


def chat_messages(index: int) -> list[dict]:
    return [{"role": "system", "content": f"{INSTRUCTIONS}\n\nExample answer:\n\n{EXAMPLE}"},
            {"role": "user", "content": f"Topic: {topic(index)}"}]


def response_text(completion: str, chat: bool) -> str:
    """The whole answer: a base completion continues the prompt's opened fence."""
    return completion if chat else "```python\n" + completion


def parse(text: str) -> Problem:
    """The problem in a response, or Rejected("unparseable", why)."""
    blocks = [b for b in fenced_blocks(strip_thinking(text)) if b.tag in ("python", "py", "")]
    if len(blocks) != 2 or not all(b.closed for b in blocks):
        raise Rejected("unparseable", f"expected 2 closed ```python blocks, found {len(blocks)}")
    solution, test = (b.code.strip("\n") + "\n" for b in blocks)
    function = parse_function(solution)
    parse_check(test)
    lines = solution.split("\n")
    split = function.body[0].end_lineno
    prompt, body = "\n".join(lines[:split]) + "\n", "\n".join(lines[split:]).rstrip("\n") + "\n"
    return Problem(function.name, prompt, body, test, function)


def parse_module(code: str, what: str) -> ast.Module:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise Rejected("unparseable", f"{what}: {type(e).__name__}: {e}") from None


def parse_function(code: str) -> ast.FunctionDef:
    """The one function of the solution block: imports before it, a docstring, a body after it."""
    module = parse_module(code, "solution")
    *imports, function = module.body or [None]
    if not isinstance(function, ast.FunctionDef) or not all(isinstance(s, (ast.Import, ast.ImportFrom))
                                                            for s in imports):
        raise Rejected("unparseable", "solution: expected imports, then one function")
    if function.name in ("check", "candidate"):
        raise Rejected("unparseable", f"solution: the function may not be called {function.name}")
    if ast.get_docstring(function) is None or len(function.body) < 2:
        raise Rejected("unparseable", "solution: the function needs a docstring and a body after it")
    if function.body[1].lineno <= function.body[0].end_lineno:
        raise Rejected("unparseable", "solution: the body must start on the line after the docstring")
    return function


def parse_check(code: str) -> ast.FunctionDef:
    module = parse_module(code, "tests")
    check = module.body[0] if len(module.body) == 1 else None
    if not isinstance(check, ast.FunctionDef) or check.name != "check" or [a.arg for a in check.args.args] != [
            "candidate"]:
        raise Rejected("unparseable", "tests: expected one `def check(candidate):`")
    return check


def check_static(problem: Problem, min_asserts: int) -> None:
    """Rejected for too few asserts, or a prompt or test the judge should not run (module docstring)."""
    check = parse_check(problem.test)
    asserts = sum(isinstance(s, ast.Assert) for s in check.body)
    if asserts < min_asserts:
        raise Rejected("too few asserts", f"{asserts} assert(s) in check, need {min_asserts}")
    for stmt in check.body:
        for node in ast.walk(stmt):
            if not isinstance(node, SAFE_NODES):
                raise Rejected("unsafe for the judge", f"tests line {getattr(node, 'lineno', stmt.lineno)}: "
                                                       f"{type(node).__name__} is not allowed")
            if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in SAFE_CALLS):
                raise Rejected("unsafe for the judge", f"tests line {node.lineno}: only calls of "
                                                       f"{', '.join(SAFE_CALLS)}")
            if isinstance(node, ast.Name) and node.id not in SAFE_CALLS:
                raise Rejected("unsafe for the judge", f"tests line {node.lineno}: unknown name {node.id!r}")
    check_prompt(ast.parse(problem.prompt + "    pass\n"))


def check_prompt(module: ast.Module) -> None:
    *imports, function = module.body
    for stmt in imports:
        names = [stmt.module or ""] if isinstance(stmt, ast.ImportFrom) else [a.name for a in stmt.names]
        bad = [n for n in names if n.split(".")[0] not in ALLOWED_IMPORTS or getattr(stmt, "level", 0)]
        if bad:
            raise Rejected("unsafe for the judge",
                           f"import of {', '.join(bad)} (allowed: {', '.join(ALLOWED_IMPORTS)})")
    if function.decorator_list:
        raise Rejected("unsafe for the judge", "a decorated function")
    args = function.args
    for default in args.defaults + [d for d in args.kw_defaults if d is not None]:
        if not all(isinstance(n, (ast.Constant, ast.Tuple, ast.UnaryOp, ast.unaryop, ast.expr_context))
                   for n in ast.walk(default)):
            raise Rejected("unsafe for the judge", f"line {default.lineno}: a default that is not a literal")
    annotations = [a.annotation for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]
                   if a is not None and a.annotation is not None] + [function.returns] * (function.returns is not None)
    for annotation in annotations:
        if not all(isinstance(n, (ast.Name, ast.Attribute, ast.Subscript, ast.Tuple, ast.List, ast.Constant,
                                  ast.BinOp, ast.BitOr, ast.expr_context)) for n in ast.walk(annotation)):
            raise Rejected("unsafe for the judge", f"line {annotation.lineno}: an annotation that is not a type name")


def task_id(index: int) -> str:
    return f"invent/{index}"


def problem_row(index: int, problem: Problem) -> dict:
    """The HumanEval-format row for a problem (with its sample index)."""
    return {"task_id": task_id(index), "prompt": problem.prompt, "entry_point": problem.entry_point,
            "canonical_solution": problem.canonical_solution, "test": problem.test, "sample_index": index}


def grading_jobs(index: int, problem: Problem) -> tuple[list[tuple[str, dict, str]], list[dict]]:
    """Judge jobs (key, problem row, completion) for the reference and each mutant, and the mutants."""
    row = problem_row(index, problem)
    made = mutants(problem.function)
    jobs = [(f"{index}/reference", row, problem.canonical_solution)]
    jobs += [(f"{index}/mutant/{k}", row, m["completion"]) for k, m in enumerate(made)]
    return jobs, made


def dedupe_key(problem: Problem) -> str:
    return normalise(problem.prompt)


def screen(problem: Problem, kept: set[str], contamination) -> None:
    """Rejected when the problem reproduces an eval text or a kept problem."""
    found = contamination.matches(problem.prompt, problem.prompt + problem.canonical_solution)
    if found:
        raise Rejected("contaminated", ", ".join(f"{f['kind']} of {f['suite']} {f['task_id']} ({f['overlap']})"
                                                 for f in found))
    if dedupe_key(problem) in kept:
        raise Rejected("duplicate", "the same prompt as a kept problem")


def verdict_row(index: int, problem: Problem, made: list[dict], verdicts: dict) -> dict:
    """The kept row, or Rejected: reference, then mutants. None: a sandbox error, undecided."""
    reference = verdicts[f"{index}/reference"]
    if reference.status == "sandbox_error":
        return None
    if not reference.passed:
        raise Rejected("reference fails", f"{reference.status}: {reference.detail}")
    if not made:
        raise Rejected("no mutants", "the reference has nothing to mutate")
    judged = [(m, verdicts[f"{index}/mutant/{k}"]) for k, m in enumerate(made)]
    judged = [(m, v) for m, v in judged if v.status != "sandbox_error"]
    killed = [m for m, v in judged if not v.passed]
    if not killed:
        survivors = "; ".join(f"{m['edit']} line {m['line']}" for m, _ in judged[:4])
        raise Rejected("tests kill no mutant", f"all {len(judged)} mutants pass ({survivors})")
    return {**problem_row(index, problem), "mutants": len(judged), "killed": len(killed),
            "mutation_score": round(len(killed) / len(judged), 4)}


def rejection_row(index: int, rejected: Rejected, text: str) -> dict:
    return {"sample_index": index, "topic": topic(index), "reason": rejected.reason, "detail": rejected.detail,
            "response": text}


# ---- the run -------------------------------------------------------------------------------------

@dataclass
class Settings:
    n: int
    chat: bool
    min_asserts: int = MIN_ASSERTS
    workers: int = 2
    unsafe: bool = False
    progress: bool = True


def draw(backend, indexes: list[int], params, chat: bool) -> list[str]:
    """One reply per sample index (its own topic and seed), `backend.concurrency` calls at a time."""
    from crucible.eval.sampling import task_seed

    def one(index: int) -> str:
        call = replace(params, seed=task_seed(params.seed, "invent", index), stop=() if chat else ("\nTopic:",))
        gen = (backend.chat(chat_messages(index), 1, call) if chat else backend.complete(base_prompt(index), 1, call))
        return gen[0].text

    with ThreadPoolExecutor(max(1, getattr(backend, "concurrency", 1))) as pool:
        return list(pool.map(one, indexes))


def invent(backend, out: str | Path, params, settings: Settings, contamination) -> dict:
    """Sample `settings.n` problems into `out` (resuming), check each, and return the summary.
    `contamination`: a ContaminationIndex of the eval texts to keep out."""
    from tqdm import tqdm

    from crucible.eval.settings import SAMPLES, check_settings, record_settings
    from crucible.eval.settings import settings as sampling_settings
    from crucible.grade.humaneval import grade
    from crucible.grade.humaneval.suite import LIMITS
    from crucible.io import appending, read_jsonl

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    check_settings(out, sampling_settings(backend.spec, params, settings.chat))
    record_settings(out, backend.spec, params, settings.chat, settings.n, "invent")
    paths = {name: out / name for name in (SAMPLES, PROBLEMS, REJECTED)}
    rows = {name: [r for _, r in read_jsonl(p, repair=True)] if p.exists() else [] for name, p in paths.items()}
    sampled = {r["sample_index"]: r["completion"] for r in rows[SAMPLES]}
    decided = {r["sample_index"] for r in rows[PROBLEMS] + rows[REJECTED]}
    kept = {normalise(r["prompt"]) for r in rows[PROBLEMS]}
    todo = [i for i in range(settings.n) if i not in decided]
    with appending(paths[SAMPLES]) as samples, appending(paths[PROBLEMS]) as problems, \
            appending(paths[REJECTED]) as rejected, \
            tqdm(total=len(todo), desc="inventing", unit="problem", disable=not settings.progress) as bar:
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            fresh = [i for i in chunk if i not in sampled]
            for i, text in zip(fresh, draw(backend, fresh, params, settings.chat)):
                samples.write({"task_id": "invent", "sample_index": i, "topic": topic(i), "completion": text})
                sampled[i] = text
            candidates, jobs = {}, []
            for i in chunk:
                text = response_text(sampled[i], settings.chat)
                try:
                    problem = parse(text)
                    check_static(problem, settings.min_asserts)
                    screen(problem, kept, contamination)
                except Rejected as e:
                    rejected.write(rejection_row(i, e, text))
                    continue
                problem_jobs, made = grading_jobs(i, problem)
                candidates[i] = (problem, made, text)
                jobs += problem_jobs
            verdicts = dict(grade(jobs, settings.workers, LIMITS, unsafe=settings.unsafe)) if jobs else {}
            for i, (problem, made, text) in candidates.items():
                try:
                    screen(problem, kept, contamination)  # a duplicate of one kept earlier in this chunk
                    row = verdict_row(i, problem, made, verdicts)
                except Rejected as e:
                    rejected.write(rejection_row(i, e, text))
                    continue
                if row is not None:
                    problems.write(row)
                    kept.add(dedupe_key(problem))
            bar.update(len(chunk))
    return summarize(out)


def summarize(out: str | Path) -> dict:
    """Counts per reason, the kept share (Wilson 95%), the mean mutation score (t 95%) and mutants per
    kept problem (mean and sd; its t interval is clipped to [0, 1]: read only mean and std) of DIR."""
    from crucible.eval.runs import mean_interval
    from crucible.io import atomic_write, read_jsonl
    from crucible.metrics.proportion import wilson_interval

    out = Path(out)
    kept = [r for _, r in read_jsonl(out / PROBLEMS)] if (out / PROBLEMS).exists() else []
    rejected = [r for _, r in read_jsonl(out / REJECTED)] if (out / REJECTED).exists() else []
    total = len(kept) + len(rejected)
    scores = [r["mutation_score"] for r in kept]
    summary = {"decided": total, "kept": len(kept),
               "kept_share": len(kept) / total if total else None,
               "kept_share_ci": list(wilson_interval(len(kept), total)) if total else None,
               "rejected": {reason: sum(r["reason"] == reason for r in rejected) for reason in REASONS},
               "mutants_per_problem": mean_interval([r["mutants"] for r in kept]) if kept else None,
               "mutation_score": mean_interval(scores) if scores else None}
    atomic_write(out / SUMMARY, json.dumps(summary, indent=2) + "\n")
    return summary


def render(summary: dict) -> str:
    """The summary as lines of text, every share with its interval."""
    lines = [f"{summary['decided']} responses, {summary['kept']} kept"]
    if summary["decided"]:
        lo, hi = summary["kept_share_ci"]
        lines[0] += f" ({100 * summary['kept_share']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}])"
    lines += [f"  rejected, {reason}: {count}" for reason, count in summary["rejected"].items() if count]
    score = summary["mutation_score"]
    if score:
        lo, hi = score["ci"]
        per = summary["mutants_per_problem"]
        lines.append(f"mutation score of kept problems: {score['mean']:.3f} [{lo:.3f}, {hi:.3f}] "
                     f"({per['mean']:.1f} ± {per['std']:.1f} (sd) mutants per problem)")
    return "\n".join(lines)
