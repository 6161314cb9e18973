"""DPO: the losses are the published formulas, the margin rises on a toy pair set, and the cached
reference log-probs equal recomputed ones."""

import json
import math
import random

import pytest
import torch

from crucible.metrics import bootstrap_ci
from crucible.testing import random_gpt, tokenizer
from crucible.posttrain import dpo
from crucible.posttrain.config import DPOConfig
from crucible.posttrain.data import load_mixture
from crucible.posttrain.losses import dpo_losses
from crucible.posttrain.policy import load_policy

TOK = tokenizer()
SOUNDS = {"cat": "meow", "dog": "woof", "cow": "moo", "duck": "quack"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("dpo")
    random_gpt(TOK).save_pretrained(d / "base", TOK)
    rng = random.Random(0)
    rows = []
    for _ in range(48):
        a = rng.choice(list(SOUNDS))
        b = rng.choice([x for x in SOUNDS if x != a])
        rows.append({"prompt": f"The {a} says", "chosen": " " + SOUNDS[a], "rejected": " " + SOUNDS[b]})
    (d / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def test_sigmoid_and_ipo_losses_match_their_formulas():
    pc, pr, rc, rr = (torch.tensor([v]) for v in (-1.0, -3.0, -2.0, -2.5))
    logits = (-1.0 + 3.0) - (-2.0 + 2.5)
    sig, margin = dpo_losses(pc, pr, rc, rr, beta=0.1)
    ipo, _ = dpo_losses(pc, pr, rc, rr, beta=0.1, kind="ipo")
    assert math.isclose(float(sig), -math.log(1 / (1 + math.exp(-0.1 * logits))), rel_tol=1e-6)
    assert math.isclose(float(ipo), (logits - 1 / 0.2) ** 2, rel_tol=1e-6)
    assert math.isclose(float(margin), 0.1 * logits, rel_tol=1e-6)


def test_dpo_raises_the_margin_and_caches_the_reference(workdir, tmp_path):
    pairs, _ = load_mixture([str(workdir / "pairs.jsonl")], pairs=True)
    policy = load_policy(f"native:{workdir / 'base'}", device="cpu")
    start = dpo.render_pairs(policy, pairs)
    fresh = dpo.reference_logprobs(policy, start, mean=False)
    cfg = DPOConfig(model="x", data=["unused"], out=str(tmp_path / "run"), lr=1e-3, batch_size=8, max_steps=12, log_every=100)
    before = dpo.margins(policy, start, fresh, cfg)
    dpo.train(cfg, policy, pairs, [], progress=False)
    cached = json.loads((tmp_path / "run" / dpo.REFERENCE).read_text())["logprobs"]
    after = dpo.margins(policy, start, cached, cfg)
    print(f"reward margin before {sum(before) / len(before):.4f}, after {sum(after) / len(after):.4f} "
          f"{bootstrap_ci(after)}, accuracy {sum(m > 0 for m in after) / len(after):.3f}")
    assert torch.allclose(torch.tensor(cached), torch.tensor(fresh), atol=1e-6)
    assert max(abs(m) for m in before) < 1e-5       # policy == reference at the start
    assert bootstrap_ci(after)[0] > 0.0


def test_reference_under_lora_is_the_adapters_switched_off(workdir):
    pairs, _ = load_mixture([str(workdir / "pairs.jsonl")], pairs=True)
    plain = load_policy(f"native:{workdir / 'base'}", device="cpu")
    lora = load_policy(f"native:{workdir / 'base'}", lora_rank=4, device="cpu")
    with torch.no_grad():
        for name, p in lora.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)                   # adapters now change the function
    docs = dpo.render_pairs(lora, pairs[:4])
    off = dpo.reference_logprobs(lora, docs, mean=False)
    assert torch.allclose(torch.tensor(off), torch.tensor(dpo.reference_logprobs(plain, docs, mean=False)), atol=1e-5)
    with torch.no_grad():
        on = dpo.pair_logprobs(lora, docs, list(range(4)), mean=False)[0]
    assert not torch.allclose(on, torch.tensor([c for c, _ in off]), atol=1e-3)


def logged_steps(log, keys=("loss", "margin", "accuracy")) -> dict[int, tuple]:
    """step -> the values of `keys` from a run's log (a step re-run after a resume overwrites)."""
    out = {}
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("event") == "train":
            out[rec["step"]] = tuple(rec[k] for k in keys)
    return out


def test_stop_then_resume_repeats_the_same_losses(workdir, tmp_path):
    """--stop-after 3 then --resume (reference log-probs read back from the cache, AdamW state,
    data position) gives the uninterrupted run's losses and margins exactly, on CPU."""
    pairs, _ = load_mixture([str(workdir / "pairs.jsonl")], pairs=True)

    def run(out, **kw):
        cfg = DPOConfig(model="x", data=["unused"], out=str(out), lr=1e-3, batch_size=4, micro_batch=2, max_steps=6,
                        log_every=100)
        return dpo.train(cfg, load_policy(f"native:{workdir / 'base'}", device="cpu"), pairs, [], progress=False, **kw)

    run(tmp_path / "whole")
    assert run(tmp_path / "cut", stop_after=3) == {"stopped_at": 3}
    assert sorted(logged_steps(tmp_path / "cut" / "log.jsonl")) == [1, 2, 3]
    summary = run(tmp_path / "cut", resume=True)
    whole, resumed = logged_steps(tmp_path / "whole" / "log.jsonl"), logged_steps(tmp_path / "cut" / "log.jsonl")
    assert summary["steps"] == 6
    assert sorted(resumed) == list(range(1, 7))
    assert resumed == whole
