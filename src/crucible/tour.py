"""`make tour`: every room of crucible, offline, in a few minutes on two cores. A plain sequence of steps.

(`make demo` is the mission: a model getting better, `crucible.demo`.)

1. Reference self-check: HumanEval's 164 canonical solutions, graded in the sandbox, must all pass.
2. A small bundled samples file (demo_data/humaneval_samples.jsonl: right, wrong and hostile
   completions) is graded; the summary table and each sample's verdict are printed.
3. Other languages: puzzle samples in Python and Go from a *simulated* model (right or wrong real
   programs drawn at random), built, run and graded in the sandbox, then `crucible report` with
   per-language pass@1..8 curves and failure modes (PNG).
4. Train: a tokenizer and a tiny GPT pretrained from scratch on the Python standard library (Muon,
   EMA, exact bits per byte), then the golf artifact (int6 + zstd) scored after decompress-and-reload.
5. Serve that model over an OpenAI-compatible API and evaluate it through the endpoint: sampled,
   sanitized, graded in the sandbox (a model this small scores 0: the point is the pipeline).

Results go to a fresh temporary directory (printed), so every run starts from scratch.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crucible.cli import main as crucible

DEMO_SAMPLES = Path(__file__).parent / "demo_data" / "humaneval_samples.jsonl"


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def run(argv: list[str]) -> None:
    print("$ crucible " + " ".join(argv), flush=True)
    start = time.perf_counter()
    rc = crucible(argv)
    if rc != 0:
        sys.exit(f"tour step failed (exit code {rc})")
    print(f"({time.perf_counter() - start:.1f} s)")


def simulated_puzzle_samples(path: Path, n: int = 8, seed: int = 0) -> Path:
    """A stand-in for a model (clearly not one): each of n samples per (puzzle, language) is the
    reference solution with a probability that falls with difficulty and differs by language, else
    another puzzle's reference (a real program that prints a wrong answer). Every sample is really
    built, run and graded; only the "model" is simulated, so the curves have something to show."""
    import random

    from crucible.tasks.puzzles import load_puzzles, reference_files

    rng = random.Random(seed)
    chance = {"easy": 0.8, "medium": 0.45, "hard": 0.15}
    skill = {"python": 1.0, "go": 0.7}
    refs = reference_files()
    puzzles = load_puzzles()
    with path.open("w") as f:
        for i, p in enumerate(puzzles):
            for lang in skill:
                wrong = refs[(puzzles[(i + 1) % len(puzzles)]["id"], lang)]
                for _ in range(n):
                    right = rng.random() < chance[p["difficulty"]] * skill[lang]
                    program = (refs[(p["id"], lang)] if right else wrong).read_text()
                    f.write(json.dumps({"task_id": p["id"], "language": lang,
                                        "completion": f"```{lang}\n{program}```\n"}) + "\n")
    return path


def main() -> int:
    out = Path(tempfile.mkdtemp(prefix="crucible-tour-"))
    print(f"results under {out}")

    step("1. reference self-check: the 164 canonical HumanEval solutions must all pass")
    run(["eval", "humaneval", "--reference", "--out", str(out / "reference"), "--k", "1", "--no-progress"])
    summary = json.loads((out / "reference" / "summary.json").read_text())
    if summary["status_counts"] != {"pass": 164}:
        sys.exit(f"self-check failed: {summary['status_counts']}")

    step("2. grade right, wrong and hostile completions (none of the hostile ones may pass)")
    run(["eval", "humaneval", "--samples", str(DEMO_SAMPLES), "--out", str(out / "samples"), "--k", "1",
         "--no-progress"])
    rows = [json.loads(line) for line in (out / "samples" / "results.jsonl").read_text().splitlines()]
    rows.sort(key=lambda r: (int(r["task_id"].split("/")[1]), r["sample_index"]))
    print(f"{'task':<14}{'verdict':<15}{'sample':<54}detail")
    for r in rows:
        print(f"{r['task_id']:<14}{r['status']:<15}{r.get('note', ''):<54}{r['detail'][:70]}")
    cheats = [r for r in rows if r.get("note", "").startswith("hostile") and r["passed"]]
    if cheats:
        sys.exit(f"a hostile sample passed: {cheats}")
    print("\nno hostile sample passed.")

    step("3. other languages: puzzles in Python and Go from a simulated model, then pass@k curves")
    samples = simulated_puzzle_samples(out / "puzzle_samples.jsonl")
    run(["eval", "puzzles", "--samples", str(samples), "--out", str(out / "puzzles"), "--k", "1,2,4,8",
         "--no-progress"])
    run(["report", str(out / "puzzles")])

    step("4. train: tokenizer + tiny GPT from scratch on the standard library, then the golf artifact")
    ckpt, data = out / "tiny", out / "data"
    # 512-token context (same tokens per step as the recipe's 16 x 128): HumanEval prompts plus the
    # completion must fit, or the server answers 400 "maximum context length" as OpenAI does.
    run(["pretrain", "--config", "pretrain_tiny", "--data", str(data), "--out", str(ckpt),
         "--max-steps", "400", "--seq-len", "512", "--batch-size", "4", "--no-progress"])
    latest = ckpt / (ckpt / "latest").read_text().strip()
    run(["golf", "export", str(latest), "--out", str(out / "tiny.golf"), "--data", str(data)])

    step("5. serve the model (OpenAI-compatible) and evaluate it through the endpoint")
    server = subprocess.Popen([sys.executable, "-m", "crucible", "serve", "--model", f"native:{latest}",
                               "--name", "tiny", "--port", "0", "--quiet"], stdout=subprocess.PIPE, text=True)
    try:
        url = re.search(r"(http://\S+/v1)", server.stdout.readline()).group(1)
        run(["eval", "humaneval", "--model", f"openai:tiny@{url}", "--limit", "8", "--n", "4", "--temperature",
             "0.8", "--max-tokens", "96", "--k", "1,4", "--out", str(out / "tiny-eval"), "--no-progress"])
    finally:
        server.terminate()
        server.wait()
    print(f"\ntour done; everything is under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
