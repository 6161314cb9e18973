"""Real clients against `crucible serve`: lm-evaluation-harness scores a loglikelihood task through it.

lm-eval's `local-completions` model sends token-id prompts with echo and max_tokens 1 (its default,
tokenized_requests=True) and reads back each continuation's log-probs. This script serves a tiny
native model, writes a small local JSON task, runs lm-eval on it, and checks every score against a
forward pass of the same checkpoint in this process. Not a test: lm-eval and its dependencies
(datasets, pandas, scikit-learn, ...) take minutes to install, longer than CI's budget allows;
install them with `pip install -e ".[clients]"`. Output: see docs/generate.md.

    python bench/serve_clients.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from crucible import testing
from crucible.model.gpt import GPT

DOCS = [{"context": "def add(a, b):\n    return", "choices": [" a + b", " a - b"], "gold": 0},
        {"context": "import", "choices": [" os", " sys"], "gold": 1},
        {"context": "for i in range(10):\n   ", "choices": [" print(i)", " pass"], "gold": 0}]


def start(spec: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "crucible", "serve", "--model", spec, "--name", "gpt",
                             "--port", "0", "--quiet"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "http://" not in line:
        raise SystemExit(f"crucible serve did not start: {line}")
    return proc, line.split(" on ", 1)[1].strip()


def write_task(root: Path) -> None:
    (root / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    (root / "tiny_choice.yaml").write_text(
        "task: tiny_choice\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {root / 'docs.jsonl'}\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{context}}\"\n"
        "doc_to_choice: \"{{choices}}\"\ndoc_to_target: gold\ntarget_delimiter: \"\"\n"
        "metric_list:\n  - metric: acc\n")


def split_like_lm_eval(tok, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """The token ids lm-eval sends: trailing whitespace moves to the continuation, the pair is encoded whole."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole, head = tok.encode(context + continuation), tok.encode(context)
    return head, whole[len(head):]


def main() -> int:
    import lm_eval
    from lm_eval.tasks import TaskManager

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    root = Path(tempfile.mkdtemp(prefix="crucible-clients-"))
    tok = testing.tokenizer()
    testing.random_gpt(tok, seq_len=256).save_pretrained(root / "gpt", tok)
    write_task(root)
    proc, url = start(f"native:{root / 'gpt'}")
    try:
        results = lm_eval.simple_evaluate(
            model="local-completions", tasks=["tiny_choice"], task_manager=TaskManager(include_path=str(root)),
            model_args=f"model=gpt,base_url={url}/completions,tokenizer_backend=huggingface,"
                       f"tokenizer={root / 'gpt'},tokenized_requests=True,max_retries=1",
            log_samples=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    model = GPT.from_pretrained(root / "gpt").eval()
    worst, scored = 0.0, 0
    for sample in results["samples"]["tiny_choice"]:
        doc = sample["doc"]
        for choice, resp in zip(doc["choices"], sample["resps"]):
            context, continuation = split_like_lm_eval(tok, doc["context"], choice)
            ids = context + continuation
            with torch.no_grad():
                scores = torch.log_softmax(model(torch.tensor([ids]))[0].float(), dim=-1)
            want = sum(scores[i - 1, ids[i]].item() for i in range(len(context), len(ids)))
            got = resp[0][0]
            worst, scored = max(worst, abs(got - want)), scored + 1
            print(f"{doc['context']!r:32} {choice!r:12} lm-eval {got:10.5f}   forward pass {want:10.5f}")
    print(f"{scored} continuations scored through crucible serve; largest |lm-eval - forward pass| = {worst:.2e}")
    return 0 if scored == 2 * len(DOCS) and worst < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
