"""Engine: KV-cache sampling equals recomputation, shared prefill, sampling controls, stops, streaming,
and tool use through the real sandbox."""

import pytest
import torch

from crucible import testing
from crucible.model.engine import Engine, SamplingParams, format_tool_result, sample_next
from crucible.sandbox import Limits, Outcome



@pytest.fixture(scope="module")
def tok():
    return testing.tokenizer(384)


@pytest.fixture(scope="module")
def engine(tok):
    return Engine(testing.random_gpt(tok, n_layer=2), tok, tools=False)


def greedy_reference(model, prompt, steps):
    x = torch.tensor([prompt])
    with torch.no_grad():
        for _ in range(steps):
            x = torch.cat([x, model(x)[:, -1].argmax(-1, keepdim=True)], 1)
    return x[0, len(prompt):].tolist()


def test_greedy_matches_recomputation_across_prompt_lengths(engine, tok):
    prompts = [tok.encode("import os\n"), tok.encode("class Stack:\n    def push(self, item):"), [tok.bos_id]]
    out = engine.generate_batch(prompts, 2, SamplingParams(max_tokens=12, ignore_eos=True))
    for prompt, samples in zip(prompts, out):
        expected = greedy_reference(engine.model, prompt, 12)
        assert [s.ids for s in samples] == [expected, expected]
        assert all(s.finish_reason == "length" and s.forced_mask == [0] * 12 for s in samples)
        assert samples[0].text == tok.decode(expected)


def test_n_samples_share_one_prefill(engine, tok):
    prompt = tok.encode("def merge_sort(items):\n    if len(items) <= 1:\n        return items\n")
    params = SamplingParams(max_tokens=8, temperature=0.9, seed=3, ignore_eos=True)
    shared = engine.generate(prompt, 6, params)
    assert engine.stats["prefill_tokens"] == len(prompt)
    separate = Engine(engine.model, tok, tools=False, share_prefill=False)
    again = separate.generate(prompt, 6, params)
    assert separate.stats["prefill_tokens"] == 6 * len(prompt)
    assert [c.ids for c in shared] == [c.ids for c in again]        # copied cache == recomputed cache
    assert len({tuple(c.ids) for c in shared}) > 1                  # and the samples differ


def test_rows_that_finish_early_leave_the_others_intact(engine, tok):
    """Rows are dropped from the batch (cache compacted) as they finish; the rest must not notice."""
    prompts = [tok.encode("import sys\n"), tok.encode("def area(r):\n    return")]
    alone = [engine.generate(p, 1, SamplingParams(max_tokens=24, ignore_eos=True))[0] for p in prompts]
    stop = alone[0].text[4:7]
    assert stop not in alone[1].text
    params = SamplingParams(max_tokens=24, stop=(stop,), ignore_eos=True)
    batch = engine.generate_batch(prompts, 3, params)
    assert all(c.finish_reason == "stop" and len(c.ids) < 10 for c in batch[0])
    assert all(c.ids == alone[1].ids and c.finish_reason == "length" for c in batch[1])


def test_seed_reproducible(engine, tok):
    prompt = tok.encode("x = ")
    a = engine.generate(prompt, 4, SamplingParams(max_tokens=10, temperature=1.0, seed=7, ignore_eos=True))
    b = engine.generate(prompt, 4, SamplingParams(max_tokens=10, temperature=1.0, seed=7, ignore_eos=True))
    c = engine.generate(prompt, 4, SamplingParams(max_tokens=10, temperature=1.0, seed=8, ignore_eos=True))
    assert [x.ids for x in a] == [x.ids for x in b] != [x.ids for x in c]


def test_top_k_one_and_tiny_top_p_are_greedy(engine, tok):
    prompt = tok.encode("for i in range(")
    greedy = engine.generate(prompt, 1, SamplingParams(max_tokens=8, ignore_eos=True))[0].ids
    assert engine.generate(prompt, 3, SamplingParams(max_tokens=8, temperature=1.5, top_k=1, ignore_eos=True))[0].ids == greedy
    assert engine.generate(prompt, 3, SamplingParams(max_tokens=8, temperature=1.5, top_p=1e-6, ignore_eos=True))[2].ids == greedy


def test_sample_next_respects_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).expand(4000, -1)
    g = torch.Generator().manual_seed(0)
    drawn = sample_next(logits, SamplingParams(temperature=1.0, top_k=2), g)
    assert set(drawn.tolist()) == {0, 1}
    drawn = sample_next(logits, SamplingParams(temperature=1.0, top_p=0.7), g)   # 0.5 + 0.3 reaches 0.7
    assert set(drawn.tolist()) == {0, 1}
    share = (drawn == 0).float().mean().item()
    assert abs(share - 0.5 / 0.8) < 0.04
    drawn = sample_next(logits, SamplingParams(temperature=1.0), g)
    assert set(drawn.tolist()) == {0, 1, 2, 3}


def test_invalid_params():
    for bad in (dict(max_tokens=0), dict(temperature=-1), dict(top_p=0), dict(top_k=-1)):
        with pytest.raises(ValueError):
            SamplingParams(**bad)


def test_stop_string_cuts_text(engine, tok):
    prompt = tok.encode("def main():\n")
    full = engine.generate(prompt, 1, SamplingParams(max_tokens=30, ignore_eos=True))[0]
    stop = full.text[10:13]
    first = full.text.find(stop)
    cut = engine.generate(prompt, 1, SamplingParams(max_tokens=30, stop=(stop, "never-seen"), ignore_eos=True))[0]
    assert cut.finish_reason == "stop"
    assert cut.text == full.text[:first]
    assert cut.ids == full.ids[:len(cut.ids)] and len(cut.ids) < 30


def script_model(tok, *pieces):
    """A bigram GPT that writes `pieces` (ids) in order, starting after <|assistant_start|>."""
    transitions = {}
    for piece in pieces:
        for a, b in zip(piece, piece[1:]):
            assert transitions.setdefault(a, b) == b, f"token {a} would need two successors"
    return testing.bigram_gpt(tok, transitions, default=tok.encode("x")[0])


def chat_prompt(tok, text="hi"):
    s = tok.special_id
    return [tok.bos_id, s("user_start"), *tok.encode(text), s("user_end"), s("assistant_start")]


def test_stops_at_assistant_end_and_streams(tok):
    s = tok.special_id
    answer = tok.encode("Hello, wörld!")
    model = script_model(tok, [s("assistant_start"), *answer, s("assistant_end")])
    engine = Engine(model, tok, tools=False)
    pieces = {0: [], 1: []}
    out = engine.generate(chat_prompt(tok), 2, SamplingParams(max_tokens=50),
                          on_token=lambda i, token, text, forced: pieces[i].append(text))
    for i, c in enumerate(out):
        assert c.finish_reason == "stop" and c.ids == answer + [s("assistant_end")]
        assert c.text == "Hello, wörld!" == "".join(pieces[i])
    assert len(pieces[0]) == len(answer) + 1
    # ignore_eos goes on past it; max_tokens caps
    long = engine.generate(chat_prompt(tok), 1, SamplingParams(max_tokens=30, ignore_eos=True))[0]
    assert long.finish_reason == "length" and len(long.ids) == 30


def test_tool_use_runs_code_in_the_sandbox_and_forces_its_output(tok):
    s = tok.special_id
    code = "print(6*7)"
    model = script_model(tok, [s("assistant_start"), s("python_start"), *tok.encode(code), s("python_end")],
                         [s("output_end"), *tok.encode(" ok"), s("assistant_end")])
    engine = Engine(model, tok, tools=True)
    streamed = []
    out = engine.generate(chat_prompt(tok), 3, SamplingParams(max_tokens=60, temperature=0.0),
                          on_token=lambda i, t, text, forced: streamed.append((i, t, forced)) if i == 0 else None)
    forced_ids = [s("output_start"), *tok.encode("42\n"), s("output_end")]
    for c in out:
        assert c.finish_reason == "stop"
        assert c.text == f"<|python_start|>{code}<|python_end|><|output_start|>42\n<|output_end|> ok"
        assert [t for t, f in zip(c.ids, c.forced_mask) if f] == forced_ids
        start = c.ids.index(s("output_start"))
        assert c.forced_mask == [0] * start + [1] * len(forced_ids) + [0] * (len(c.ids) - start - len(forced_ids))
    assert [f for _, _, f in streamed] == out[0].forced_mask
    # without tools, python_end is just a token and nothing is forced
    plain = Engine(model, tok, tools=False).generate(chat_prompt(tok), 1, SamplingParams(max_tokens=20))[0]
    assert sum(plain.forced_mask) == 0 and s("output_start") not in plain.ids


def test_tool_errors_and_limits_reach_the_model(tok):
    s = tok.special_id
    code = "1/0"
    model = script_model(tok, [s("assistant_start"), s("python_start"), *tok.encode(code), s("python_end")])
    out = Engine(model, tok).generate(chat_prompt(tok), 1, SamplingParams(max_tokens=40))[0]
    assert "<|output_start|>ZeroDivisionError: division by zero<|output_end|>" in out.text
    # forced output counts toward max_tokens: a budget that ends inside it gives "length"
    short = Engine(model, tok).generate(chat_prompt(tok), 1, SamplingParams(max_tokens=8))[0]
    assert short.finish_reason == "length" and len(short.ids) == 8
    timeout = Outcome("timeout", -9, "partial\n", "", 2.0, 1.0, detail="CPU limit 1s")
    assert format_tool_result(timeout) == "partial\n[timeout: CPU limit 1s]"
    assert format_tool_result(Outcome("ok", 0, "x" * 5000, "", 0.1, 0.1)).endswith("[truncated]")


def test_tool_timeout_is_enforced(tok):
    s = tok.special_id
    code = "while 1:0"
    model = script_model(tok, [s("assistant_start"), s("python_start"), *tok.encode(code), s("python_end")])
    engine = Engine(model, tok, tool_limits=Limits(timeout_s=0.5, wall_s=3))
    out = engine.generate(chat_prompt(tok), 1, SamplingParams(max_tokens=40))[0]
    assert "[timeout:" in out.text


def test_empty_prompt_rejected(engine):
    with pytest.raises(ValueError, match="at least one token"):
        engine.generate([], 1)


def test_engine_loads_a_checkpoint(engine, tok, tmp_path):
    engine.model.save_pretrained(tmp_path, tok)
    loaded = Engine.load(tmp_path, tools=False)
    prompt = tok.encode("while True:")
    params = SamplingParams(max_tokens=6, ignore_eos=True)
    assert loaded.generate(prompt, 1, params)[0].ids == engine.generate(prompt, 1, params)[0].ids


def test_batches_split_to_fit_the_cache_budget(engine, tok):
    prompts = [tok.encode(t) for t in ("a = 1", "def long_function_name(argument):", "x", "import re")]
    params = SamplingParams(max_tokens=5, ignore_eos=True)
    whole = engine.generate_batch(prompts, 2, params)
    seen = []
    small = Engine(engine.model, tok, tools=False, cache_bytes=1)     # one prompt per batch
    split = small.generate_batch(prompts, 2, params, on_token=lambda i, t, text, f: seen.append((i, t)))
    assert [[c.ids for c in s] for s in split] == [[c.ids for c in s] for s in whole]
    assert small.stats["prefill_tokens"] == sum(map(len, prompts))
    for i in range(len(prompts) * 2):   # streamed indices are prompt * n + sample, in the caller's order
        assert [t for j, t in seen if j == i] == split[i // 2][i % 2].ids


def test_decoding_follows_weights_changed_in_place(tok):
    """The decoding path caches prepacked weights; an in-place update (a training step) must show."""
    model = testing.random_gpt(tok, n_layer=2)
    engine = Engine(model, tok, tools=False)
    prompt = tok.encode("def f(x):\n    return")
    params = SamplingParams(max_tokens=10, ignore_eos=True)
    before = engine.generate(prompt, 2, params)[0].ids
    assert before == greedy_reference(model, prompt, 10)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.add_(torch.randn_like(p) * 0.5)
    after = engine.generate(prompt, 2, params)
    expected = greedy_reference(model, prompt, 10)
    assert [s.ids for s in after] == [expected, expected]
    assert expected != before
