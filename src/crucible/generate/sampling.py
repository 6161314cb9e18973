"""Sample a model on a suite, then grade: `crucible eval SUITE --model SPEC --out DIR`.

`DIR/samples.jsonl` is append-only, one row per sample ({"task_id", "language", "completion",
"sample_index", "finish_reason", "raw" when sanitizing changed it}), written and flushed as each
task's samples arrive. A re-run with the same DIR generates only the (task, index) pairs that are
missing — a killed run loses at most the samples in flight and duplicates nothing — and a torn
last line is cut off. `DIR/sampling.json` records the model and sampling settings; once DIR holds
samples, re-using it with different ones is refused (n and the task selection may change: more
samples are added, fewer are ignored). Grading is then exactly `--samples`: `crucible.grade.runner.grade_samples`.

Prompting. Base completion (default): the task's prompt is continued and cut at its stop
sequences. `--chat`: a function-completion task (one with an "entry_point") is asked as
"Complete the following <language> function ..." with the prompt in a fence; any other task's
prompt is sent as it is (a trailing open fence, where a base model would start writing, becomes
"Reply with the program in one ```tag code block."); the reply goes through
`sanitize.completion_from_chat`.

Seeds: each task's call gets a seed derived from (--seed, task_id, first missing index), so a
result does not depend on which tasks were already done or how many threads ran. At temperature
0 a task is generated once and the text copied to its n samples (greedy decoding is a function
of the prompt), and a backend that can batch prompts (`complete_many`: native, hf) decodes up to
GREEDY_BATCH tasks with the same stop sequences in one call. `--runs R` repeats everything in
DIR/run-r with seed S+r and reports the mean and standard deviation of pass@1 across runs, with a
t-interval for the mean.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, replace
from pathlib import Path

from crucible.cli import UsageError
from crucible.generate.backends import Backend, BackendError, GenParams, load_backend, parse_spec
from crucible.generate.sanitize import completion_from_chat, truncate_at_stop

SAMPLES = "samples.jsonl"
CONFIG = "sampling.json"
RUNS = "runs.json"
GREEDY_BATCH = 16  # tasks per call when a backend can batch prompts (native, hf) and decoding is greedy
# Two-sided 95% Student t quantiles for 1..30 degrees of freedom (no scipy here); 1.96 beyond.
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042)


def params_from_args(args) -> GenParams:
    params = GenParams(max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
                       top_k=args.top_k, seed=args.seed)
    why = params.check()
    if why:
        raise UsageError(f"--{why.replace('_', '-', 1)}")
    return params


def chat_messages(task: dict, language) -> list[dict]:
    """The conversation a chat model is given for `task`."""
    tag = language.fence_tags[0] if language.fence_tags else language.name
    if not task.get("entry_point"):
        # A base-model prompt may end by opening the answer's fence (puzzles do): ask for it instead.
        prompt, opened = re.subn(r"\n*(```|~~~)[^\n`]*\n?\Z", "", task["prompt"])
        if opened:
            prompt += f"\n\nReply with the program in one ```{tag} code block."
        return [{"role": "user", "content": prompt}]
    text = (f"Complete the following {language.name} function. Reply with the whole function, "
            f"signature included, in one ```{tag} code block.\n\n```{tag}\n{task['prompt'].strip()}\n```")
    return [{"role": "user", "content": text}]


def task_seed(seed: int | None, task_id: str, index: int) -> int | None:
    if seed is None:
        return None
    digest = hashlib.sha256(f"{seed}\x1f{task_id}\x1f{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def generate_task(backend: Backend, task: dict, indices: list[int], params: GenParams, chat: bool) -> list[dict]:
    """Rows for the samples `indices` of one task."""
    from crucible.languages import get

    language = get(task["language"])
    stops = tuple(task.get("stop") or language.stop_sequences)
    call = replace(params, seed=task_seed(params.seed, task["task_id"], indices[0]), stop=() if chat else stops)
    count = 1 if params.temperature == 0 else len(indices)
    if chat:
        gens = backend.chat(chat_messages(task, language), count, call)
    else:
        gens = backend.complete(task["prompt"], count, call)
    if count == 1:
        gens = gens * len(indices)
    rows = []
    for index, gen in zip(indices, gens):
        if chat:
            completion = completion_from_chat(gen.text, task, language)
        else:
            completion = truncate_at_stop(gen.text, stops)[0]
        rows.append(sample_row(task, index, completion, gen))
    return rows


def sample_row(task: dict, index: int, completion: str, gen) -> dict:
    """One samples.jsonl row; the model's text is kept as "raw" when sanitizing changed it."""
    row = {"task_id": task["task_id"], "language": task["language"], "completion": completion,
           "sample_index": index, "finish_reason": gen.finish_reason}
    if completion != gen.text:
        row["raw"] = gen.text
    return row


def task_stops(task: dict) -> tuple[str, ...]:
    from crucible.languages import get
    return tuple(task.get("stop") or get(task["language"]).stop_sequences)


def greedy_groups(todo: list[tuple[dict, list[int]]], size: int) -> list[list[tuple[dict, list[int]]]]:
    """Tasks with the same stop sequences, in chunks of `size`: one batched call each."""
    by_stops: dict[tuple, list] = {}
    for item in todo:
        by_stops.setdefault(task_stops(item[0]), []).append(item)
    return [group[i:i + size] for group in by_stops.values() for i in range(0, len(group), size)]


def generate_greedy_batch(backend, group: list[tuple[dict, list[int]]], params: GenParams) -> list[dict]:
    """Greedy base completion of several tasks in one call (no seed matters at temperature 0)."""
    stops = task_stops(group[0][0])
    gens = backend.complete_many([task["prompt"] for task, _ in group], replace(params, stop=stops))
    rows = []
    for (task, indices), gen in zip(group, gens):
        completion = truncate_at_stop(gen.text, stops)[0]
        rows += [sample_row(task, index, completion, gen) for index in indices]
    return rows


def read_rows(path: Path) -> list[dict]:
    """Rows of a samples file; a torn last line (a killed writer) is cut off the file."""
    if not path.exists():
        return []
    rows, good = [], 0
    with path.open("rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            try:
                rows.append(json.loads(raw))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise UsageError(f"{path}:{len(rows) + 1}: not valid JSON; move the file away to resample") from None
            good += len(raw)
    if good != path.stat().st_size:
        with path.open("r+b") as f:
            f.truncate(good)
    return rows


def sample_suite(suite, backend: Backend, out: Path, *, n: int, params: GenParams, chat: bool,
                 progress: bool = True) -> list[dict]:
    """Generate what `out/samples.jsonl` lacks; return the samples in scope, in task order."""
    from tqdm import tqdm

    path = out / SAMPLES
    have = {(r["task_id"], r["sample_index"]): r for r in read_rows(path)}
    todo = []
    for task in suite.tasks:
        missing = [i for i in range(n) if (task["task_id"], i) not in have]
        if missing:
            todo.append((task, missing))
    bar = tqdm(total=sum(len(m) for _, m in todo), desc=f"sampling {suite.name}", unit="sample",
               disable=not progress, dynamic_ncols=True)
    with path.open("a", encoding="utf-8") as f, ThreadPoolExecutor(max(1, backend.concurrency)) as pool:
        if params.temperature == 0 and not chat and hasattr(backend, "complete_many"):
            futures = [pool.submit(generate_greedy_batch, backend, group, params)
                       for group in greedy_groups(todo, GREEDY_BATCH)]
        else:
            futures = [pool.submit(generate_task, backend, task, missing, params, chat) for task, missing in todo]
        try:
            for future in as_completed(futures):
                for row in future.result():
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                    f.flush()
                    have[(row["task_id"], row["sample_index"])] = row
                    bar.update(1)
                os.fsync(f.fileno())
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        finally:
            bar.close()
    return [have[(t["task_id"], i)] for t in suite.tasks for i in range(n)]


def settings(spec: str, params: GenParams, chat: bool) -> dict:
    """What must match for samples to be mixed in one file. An openai: spec counts by its model
    name: the server's URL may change between runs (a new port), the model may not."""
    p = asdict(params)
    p.pop("stop")
    model = spec.split("@", 1)[0] if spec.startswith("openai:") else spec
    return {"model": model, "chat": chat, **p}


def check_settings(out: Path, wanted: dict) -> None:
    path = out / CONFIG
    if not path.exists() or not (out / SAMPLES).exists() or (out / SAMPLES).stat().st_size == 0:
        return  # nothing sampled yet (say, the server was unreachable): the settings may change
    try:
        had = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise UsageError(f"{path}: not valid JSON") from None
    diff = [f"{k}: {had.get(k)!r} there, {v!r} now" for k, v in wanted.items() if had.get(k) != v]
    if diff:
        raise UsageError(f"{path}: {out} was sampled with other settings ({'; '.join(diff)}); "
                         "use another --out")


def evaluate_model(suite, args, ks) -> dict:
    """Sample `args.model` on `suite.tasks` into args.out (or args.out/run-r), grade, summarize."""
    from crucible.grade.runner import grade_samples

    params = params_from_args(args)
    runs = getattr(args, "runs", None)
    n, runs, chat = args.n, 1 if runs is None else runs, bool(getattr(args, "chat", False))
    if n < 1:
        raise UsageError(f"--n must be >= 1, got {n}")
    if runs < 1:
        raise UsageError(f"--runs must be >= 1, got {runs}")
    try:
        parse_spec(args.model)
    except BackendError as e:
        raise UsageError(str(e)) from None
    out = Path(args.out)
    dirs = [out] if runs == 1 else [out / f"run-{r}" for r in range(runs)]
    seeds = [None if params.seed is None else params.seed + r for r in range(runs)]
    for d, seed in zip(dirs, seeds):  # refuse before loading a model or writing anything
        check_settings(d, settings(args.model, replace(params, seed=seed), chat))
    try:
        backend = load_backend(args.model, **backend_options(args))
    except BackendError as e:
        raise UsageError(str(e)) from None
    progress = not getattr(args, "no_progress", False)
    summaries = []
    try:
        for d, seed in zip(dirs, seeds):
            run_params = replace(params, seed=seed)
            d.mkdir(parents=True, exist_ok=True)
            if not (d / SAMPLES).exists() or (d / SAMPLES).stat().st_size == 0 or not (d / CONFIG).exists():
                _atomic_write(d / CONFIG, json.dumps({**settings(args.model, run_params, chat), "spec": args.model,
                                                      "n": n, "suite": suite.name}, indent=2) + "\n")
            try:
                samples = sample_suite(suite, backend, d, n=n, params=run_params, chat=chat, progress=progress)
            except BackendError as e:
                raise UsageError(f"{args.model}: {e}") from None
            to_grade = [{k: v for k, v in s.items() if k != "raw"} for s in samples]
            grade_ks = sorted(set(ks) | {1}) if runs > 1 else ks
            summaries.append(grade_samples(suite, to_grade, d, ks=grade_ks, workers=getattr(args, "workers", None),
                                           progress=progress))
    finally:
        backend.close()
    if runs == 1:
        return summaries[0]
    summary = runs_summary(suite.name, args.model, summaries, seeds, [d.name for d in dirs])
    _atomic_write(out / RUNS, json.dumps(summary, indent=2) + "\n")
    _atomic_write(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    _atomic_write(out / "summary.md", render_runs(summary))
    return summary


def backend_options(args) -> dict:
    concurrency = getattr(args, "concurrency", None)
    return {"concurrency": concurrency} if concurrency and args.model.startswith("openai:") else {}


def mean_interval(values: list[float]) -> dict:
    """Mean, sample standard deviation and a 95% t-interval for the mean."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return {"mean": mean, "std": 0.0, "ci": [mean, mean]}
    std = statistics.stdev(values)
    t = T975[len(values) - 2] if len(values) - 1 <= len(T975) else 1.96
    half = t * std / len(values) ** 0.5
    return {"mean": mean, "std": std, "ci": [max(0.0, mean - half), min(1.0, mean + half)]}


def runs_summary(suite_name: str, spec: str, summaries: list[dict], seeds, names) -> dict:
    per_run = [{"run": name, "seed": seed, "pass@1": s["pass@k"]["1"], "ci": s["ci"]["1"],
                "n_tasks": s["n_tasks"], "n_samples": s["n_samples"]}
               for name, seed, s in zip(names, seeds, summaries)]
    summary = {"suite": suite_name, "model": spec, "runs": per_run,
               "pass@1": mean_interval([r["pass@1"] for r in per_run])}
    languages = sorted({lang for s in summaries for lang in s.get("languages", {})})
    if languages:
        summary["languages"] = {lang: mean_interval([s["languages"][lang]["pass@k"]["1"] for s in summaries
                                                     if lang in s.get("languages", {})]) for lang in languages}
    return summary


def render_runs(summary: dict) -> str:
    p = summary["pass@1"]
    runs = summary["runs"]
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    lines = [f"# {summary['suite']}: {len(runs)} runs of {summary['model']}", "",
             f"pass@1 across runs: {pct(p['mean'])}% ± {pct(p['std'])} (σ); "
             f"95% CI of the mean [{pct(p['ci'][0])}, {pct(p['ci'][1])}]", "",
             "| run | seed | tasks | samples | pass@1 (95% CI) |", "|---|---:|---:|---:|---:|"]
    for r in runs:
        lines.append(f"| {r['run']} | {r['seed']} | {r['n_tasks']} | {r['n_samples']} | "
                     f"{pct(r['pass@1'])}% [{pct(r['ci'][0])}, {pct(r['ci'][1])}] |")
    for lang, m in summary.get("languages", {}).items():
        lines.append(f"\n{lang}: pass@1 {pct(m['mean'])}% ± {pct(m['std'])} (σ); "
                     f"95% CI of the mean [{pct(m['ci'][0])}, {pct(m['ci'][1])}]")
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
