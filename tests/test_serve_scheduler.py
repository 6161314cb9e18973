"""Continuous batching: requests that join a running batch get what they would get alone, log-probs
are the model's own, and a small request is not held up by a big one."""

import threading
import time

import pytest
import torch

from crucible import testing
from crucible.model.engine import Engine, SamplingParams
from crucible.model.scheduler import Request, Scheduler


@pytest.fixture(scope="module")
def tok():
    return testing.tokenizer(384)


@pytest.fixture(scope="module")
def engine(tok):
    return Engine(testing.random_gpt(tok, n_layer=2, seq_len=1024), tok, tools=False)


@pytest.fixture()
def scheduler(engine):
    s = Scheduler(engine)
    yield s
    s.close()


def run_together(scheduler, requests, gap=0.01):
    """Submit the requests from threads, `gap` seconds apart (so later ones join a running batch)."""
    results = [None] * len(requests)

    def go(i):
        results[i] = scheduler.run(requests[i])
    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
        time.sleep(gap)
    for t in threads:
        t.join(timeout=120)
    return results


def test_joining_requests_decode_as_they_would_alone(scheduler, engine, tok):
    prompts = [tok.encode("import os\n"), tok.encode("class Stack:\n    def push(self, item):"), [tok.bos_id]]
    lengths = [30, 9, 17]
    requests = [Request(p, 2, SamplingParams(max_tokens=k, ignore_eos=True), k) for p, k in zip(prompts, lengths)]
    results = run_together(scheduler, requests)
    for prompt, k, result in zip(prompts, lengths, results):
        alone = engine.generate(prompt, 1, SamplingParams(max_tokens=k, ignore_eos=True))[0].ids
        assert [s.completion.ids for s in result.samples] == [alone, alone]
    assert scheduler.stats["max_batch"] > 2   # they did share the batch


def test_seeded_samples_do_not_depend_on_the_company(scheduler, tok):
    params = SamplingParams(max_tokens=12, temperature=1.0, seed=11, ignore_eos=True)
    alone = scheduler.run(Request(tok.encode("def f(x):"), 3, params, 12))
    others = [Request(tok.encode("import re\n"), 4, SamplingParams(max_tokens=40, temperature=0.7, seed=2,
                                                                  ignore_eos=True), 40)]
    crowded = run_together(scheduler, others + [Request(tok.encode("def f(x):"), 3, params, 12)])[1]
    assert [s.completion.ids for s in crowded.samples] == [s.completion.ids for s in alone.samples]
    assert len({tuple(s.completion.ids) for s in alone.samples}) > 1


def test_logprobs_equal_a_forward_pass(scheduler, engine, tok):
    prompt = tok.encode("def add(a, b):\n    return")
    result = scheduler.run(Request(prompt, 1, SamplingParams(max_tokens=8, temperature=0.8, seed=1, ignore_eos=True),
                                   8, logprobs=3, prompt_logprobs=2))
    sample = result.samples[0]
    ids = prompt + sample.completion.ids
    with torch.no_grad():
        reference = torch.log_softmax(engine.model(torch.tensor([ids]))[0].float(), dim=-1)
    want = [reference[i - 1, ids[i]].item() for i in range(1, len(ids))]
    got = result.prompt_logprobs[1:] + sample.logprobs
    assert result.prompt_logprobs[0] is None
    assert max(abs(a - b) for a, b in zip(got, want)) < 1e-4
    best = reference[len(prompt) - 1].topk(3)
    assert [t for t, _ in sample.top[0]] == best.indices.tolist()
    assert abs(sample.top[0][0][1] - best.values[0].item()) < 1e-4
    assert all(len(alternatives) == 2 for alternatives in result.prompt_top[1:])


def test_max_tokens_zero_scores_without_generating(scheduler, tok):
    result = scheduler.run(Request(tok.encode("x = 1\n"), 1, SamplingParams(), 0, prompt_logprobs=0))
    assert result.samples[0].completion.ids == []
    assert len(result.prompt_logprobs) == len(tok.encode("x = 1\n"))


def test_a_small_request_is_not_stuck_behind_a_big_one(scheduler, tok):
    big = Request([tok.bos_id], 8, SamplingParams(max_tokens=600, ignore_eos=True), 600)
    finished = {}

    def go(name, request):
        scheduler.run(request)
        finished[name] = time.monotonic()
    t = threading.Thread(target=go, args=("big", big))
    t.start()
    time.sleep(0.3)
    go("small", Request(tok.encode("x"), 1, SamplingParams(max_tokens=4, ignore_eos=True), 4))
    assert "big" not in finished   # the small one was admitted into the running batch and left first
    t.join(timeout=120)
    assert finished["big"] > finished["small"]


def test_a_cancelled_request_leaves_at_the_next_step(scheduler, tok):
    request = Request([tok.bos_id], 2, SamplingParams(max_tokens=900, ignore_eos=True), 900)
    threading.Timer(0.2, request.cancelled.set).start()
    result = scheduler.run(request)
    assert [s.completion.finish_reason for s in result.samples] == ["abort", "abort"]
    assert len(result.samples[0].completion.ids) < 900
