"""vote@N: majority vote over a task's N samples by what they do, with no oracle (self-consistency).

Why: pass@N needs an oracle that picks the right sample; at test time there is none. Majority
voting (self-consistency; AlphaCode's clustering) submits the behaviour most samples agree on. For
each task every distinct program runs on the task's vote inputs IN THE SANDBOX
(`crucible.languages.inputs`); its behaviour is the tuple of its stripped outputs. Programs that
fail on any input (crash, timeout, compile error) do not vote. Identical behaviours form a
cluster; the largest wins (a tie goes to the cluster whose first sample comes first), and its first
sample is submitted. vote@N for the task is that sample's verdict from the grader's rows: the vote
only chooses, the hidden tests judge. When no program runs cleanly the task's first sample is
submitted.

Vote inputs: a task's "vote_inputs" (the task world has inputs apart from its hidden tests), else
one empty stdin — puzzles read no input, so their behaviour is the answer they print.

Answers in words (language `PROSE`, answer-checked tasks in final mode) are never run: their
behaviour is the normalised final answer they give (`answer_of`, the suite's `vote_answer`),
computed in this process; a reply with no answer does not vote. A suite may also say when two
printed behaviours are the same answer (`canonical`, the suite's `vote_canonical`: an answer task's
program printing `42` and one printing `42.0` agree).

The behaviours are cached in DIR/vote_behaviours.jsonl (append-only, flushed; a re-run only runs
programs not yet seen). The interval is the bootstrap over tasks that pass@k uses.

Not covered: function-completion tasks (HumanEval: they have no stdin inputs; a harness that calls
the function on generated arguments would be needed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from crucible.grade import program_hash
from crucible.io import appending, read_jsonl
from crucible.languages import PROSE
from crucible.languages.inputs import run_on_inputs
from crucible.metrics import bootstrap_ci, pass_at_k_table, task_counts
from crucible.sandbox import Limits
from crucible.sanitize import extract_program

BEHAVIOURS = "vote_behaviours.jsonl"


class VoteError(ValueError):
    """The samples and the grader's rows do not go together (grade the samples first)."""
LIMITS = Limits(timeout_s=2.0, wall_s=30.0)


def behaviour_key(language: str, program: str, inputs: list[str]) -> str:
    return program_hash("vote", language, program, *inputs)


def behaviour(language: str, program: str, inputs: list[str], *, limits: Limits = LIMITS,
              unsafe: bool = False) -> list[str] | None:
    """The program's stripped output on each input (run in the sandbox), or None if any run failed."""
    outcomes = run_on_inputs(language, program, inputs, limits=limits, unsafe=unsafe)
    if any(o.status != "ok" for o in outcomes):
        return None
    return [o.stdout.strip() for o in outcomes]


def pick(behaviours: list) -> tuple[int, int]:
    """(index of the submitted sample, size of its cluster) given each sample's behaviour in sample
    order (None: did not run cleanly, no vote)."""
    clusters: dict[str, list[int]] = {}
    for i, b in enumerate(behaviours):
        if b is not None:
            clusters.setdefault(json.dumps(b), []).append(i)
    if not clusters:
        return 0, 0
    best = max(clusters.values(), key=lambda members: (len(members), -members[0]))
    return best[0], len(best)


def task_groups(samples: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Samples by (task_id, language), each group in sample_index order, groups in sorted order."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for s in samples:
        groups.setdefault((s["task_id"], s.get("language", "python")), []).append(s)
    return {k: sorted(groups[k], key=lambda s: s["sample_index"]) for k in sorted(groups)}


def vote(samples: list[dict], rows: list[dict], inputs_of: Callable[[str], list[str]], out: str | Path, *,
         workers: int = 2, limits: Limits = LIMITS, unsafe: bool = False, progress: bool = True,
         answer_of: Callable[[dict], str | None] | None = None,
         canonical: Callable[[list[str]], object] | None = None) -> list[dict]:
    """One row per task: {"task_id", "language", "n", "submitted", "cluster", "passed"}.

    `rows` are the grader's results for the same samples (passed per (task_id, language,
    sample_index)); `inputs_of(task_id)` gives a task's vote inputs (stdin texts); `answer_of(sample)`
    the answer a reply in words gives (needed only when there are such samples); `canonical(outputs)`
    what a clean run's outputs count as when clustering (default: the outputs themselves)."""
    from tqdm import tqdm

    passed = {(r["task_id"], r["language"], r["sample_index"]): bool(r["passed"]) for r in rows}
    groups = task_groups(samples)
    missing = [(k, s["sample_index"]) for k, g in groups.items() for s in g
               if (k[0], k[1], s["sample_index"]) not in passed]
    if missing:
        (task_id, language), index = missing[0]
        raise VoteError(f"{len(missing)} sample(s) have no graded row, e.g. {task_id} ({language}) "
                         f"sample {index}: grade them first")
    jobs: dict[str, tuple[str, str, list[str]]] = {}
    keys: dict[tuple[str, str, int], str] = {}
    answers: dict[tuple[str, str, int], str | None] = {}
    for (task_id, language), group in groups.items():
        if language == PROSE:
            if answer_of is None:
                raise VoteError(f"{task_id} is answered in words: this suite cannot read its answers")
            answers.update({(task_id, language, s["sample_index"]): answer_of(s) for s in group})
            continue
        inputs = inputs_of(task_id)
        for s in group:
            program = extract_program(s["completion"], language)
            key = behaviour_key(language, program, inputs)
            keys[(task_id, language, s["sample_index"])] = key
            jobs.setdefault(key, (language, program, inputs))
    path = Path(out) / BEHAVIOURS
    path.parent.mkdir(parents=True, exist_ok=True)
    known = {r["key"]: r["behaviour"] for _, r in read_jsonl(path, repair=True)} if path.exists() else {}
    todo = [k for k in jobs if k not in known]
    with appending(path) as f, ThreadPoolExecutor(max(1, workers)) as pool, \
            tqdm(total=len(todo), desc="vote: running programs", unit="program", disable=not progress,
                 dynamic_ncols=True) as bar:
        futures = {pool.submit(behaviour, *jobs[k], limits=limits, unsafe=unsafe): k for k in todo}
        for future in as_completed(futures):
            key = futures[future]
            known[key] = future.result()
            f.write({"key": key, "behaviour": known[key]})
            bar.update(1)

    def behaviour_of(k):
        if k in answers:
            return answers[k]
        outputs = known[keys[k]]
        return canonical(outputs) if canonical and outputs is not None else outputs

    votes = []
    for (task_id, language), group in groups.items():
        chosen, size = pick([behaviour_of((task_id, language, s["sample_index"])) for s in group])
        index = group[chosen]["sample_index"]
        votes.append({"task_id": task_id, "language": language, "n": len(group), "submitted": index,
                      "cluster": size, "passed": passed[(task_id, language, index)]})
    return votes


def vote_summary(votes: list[dict], rows: list[dict], *, seed: int = 0) -> dict:
    """vote@N beside pass@1 and pass@N over the same tasks, each with a 95% bootstrap interval."""
    n = min(v["n"] for v in votes)
    voted = {(v["task_id"], v["language"]) for v in votes}
    rows = [r for r in rows if (r["task_id"], r["language"]) in voted]
    per_task = [float(v["passed"]) for v in votes]
    table = pass_at_k_table(task_counts(rows, key=lambda r: f"{r['task_id']}\x1f{r['language']}"), [1, n], seed=seed)
    return {"n_tasks": len(votes), "n": n,
            "vote@N": {"value": sum(per_task) / len(per_task), "ci": list(bootstrap_ci(per_task, seed=seed))},
            "pass@1": {"value": table[1]["pass"], "ci": table[1]["ci"]},
            "pass@N": {"value": table[n]["pass"], "ci": table[n]["ci"]}}


def render(summary: dict) -> str:
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    lines = [f"{summary['n_tasks']} tasks, N = {summary['n']} samples each", "",
             "| metric | value (95% CI) |", "|---|---:|"]
    for name in ("pass@1", "vote@N", "pass@N"):
        m = summary[name]
        label = name.replace("@N", f"@{summary['n']}")
        lines.append(f"| {label} | {pct(m['value'])}% [{pct(m['ci'][0])}, {pct(m['ci'][1])}] |")
    return "\n".join(lines) + "\n"
