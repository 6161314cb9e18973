"""In-process backends (hf:, native:, vllm:) on tiny models built here: stops, seeds, streaming, chat."""

from __future__ import annotations

import pytest

from crucible.generate.registry import load_backend
from crucible.generate.types import BackendError, GenParams
from crucible.testing import SMALL_TALK, TOY_TASK, demo_model


@pytest.fixture(scope="module")
def hf():
    return load_backend(f"hf:{demo_model()}")


@pytest.fixture(scope="module")
def native_dir(tmp_path_factory):
    from crucible import testing

    out = tmp_path_factory.mktemp("native")
    testing.random_gpt(testing.tokenizer()).save_pretrained(out, testing.tokenizer())
    return out


def test_hf_memorized_continuation_is_cut_at_the_stop(hf):
    gen, = hf.complete(TOY_TASK["prompt"], 1, GenParams(max_tokens=40, stop=tuple(TOY_TASK["stop"])))
    assert (gen.text, gen.finish_reason) == ("    return x + 1\n\n", "stop")
    full, = hf.complete(TOY_TASK["prompt"], 1, GenParams(max_tokens=40))
    assert full.text.startswith("    return x + 1\n\n\ndef unused():") and full.finish_reason == "stop"  # EOS
    short, = hf.complete(TOY_TASK["prompt"], 1, GenParams(max_tokens=3))
    assert short.finish_reason == "length" and short.completion_tokens == 3


def test_hf_chat_template_and_streaming(hf):
    pieces: list[str] = []
    gen, = hf.chat(SMALL_TALK[:1], 1, GenParams(max_tokens=20), on_text=lambda i, t: pieces.append(t))
    assert gen.text == "2+2 is 4." and "".join(pieces) == gen.text and len(pieces) > 2


def test_hf_sampling_is_seeded_and_rows_differ(hf):
    params = GenParams(max_tokens=12, temperature=1.5, seed=3)
    a = [g.text for g in hf.complete("def", 4, params)]
    b = [g.text for g in hf.complete("def", 4, params)]
    c = [g.text for g in hf.complete("def", 4, GenParams(max_tokens=12, temperature=1.5, seed=4))]
    assert a == b and a != c and len(set(a)) > 1


def test_hf_streams_every_row_without_stop_text(hf):
    seen: dict[int, str] = {}
    params = GenParams(max_tokens=30, temperature=1.0, seed=1, stop=("\n",))
    gens = hf.complete(TOY_TASK["prompt"], 3, params, on_text=lambda i, t: seen.__setitem__(i, seen.get(i, "") + t))
    assert [seen.get(i, "") for i in range(3)] == [g.text for g in gens]
    assert all("\n" not in g.text for g in gens)


def test_bad_specs_are_clear(tmp_path):
    with pytest.raises(BackendError, match="not a directory"):
        load_backend(f"hf:{tmp_path / 'missing'}")
    with pytest.raises(BackendError, match="cannot load"):
        load_backend(f"hf:{tmp_path}")
    with pytest.raises(BackendError, match="expected native:DIR"):
        load_backend("gguf:x")


def test_vllm_missing_is_a_clear_error(tmp_path):
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match="needs the vllm package"):
            load_backend(f"vllm:{tmp_path}")
    else:  # a GPU machine with vLLM: the spec at least reaches vLLM, which rejects an empty dir
        with pytest.raises(Exception):
            load_backend(f"vllm:{tmp_path}")


def test_native_matches_the_engine_and_streams(native_dir):
    from crucible.model.engine import Engine, SamplingParams

    backend = load_backend(f"native:{native_dir}")
    engine = Engine.load(native_dir, tools=False)
    ids = [engine.tokenizer.bos_id] + engine.tokenizer.encode("def add(a, b):\n")
    want = [c.text for c in engine.generate(ids, 3, SamplingParams(max_tokens=16, temperature=1.0, seed=5))]
    seen: dict[int, str] = {}
    gens = backend.complete("def add(a, b):\n", 3, GenParams(max_tokens=16, temperature=1.0, seed=5),
                            on_text=lambda i, t: seen.__setitem__(i, seen.get(i, "") + t))
    assert [g.text for g in gens] == want and [seen.get(i, "") for i in range(3)] == want
    assert all(g.prompt_tokens == len(ids) for g in gens)


def test_native_stops_and_chat(native_dir):
    backend = load_backend(f"native:{native_dir}")
    free, = backend.complete("x = ", 1, GenParams(max_tokens=24))
    stop = next((free.text[i:i + 2] for i in range(1, len(free.text) - 1) if free.text[i:i + 2].strip()), None)
    assert stop is not None, free.text
    cut, = backend.complete("x = ", 1, GenParams(max_tokens=24, stop=(stop,)))
    assert cut.finish_reason == "stop" and cut.text == free.text[:free.text.find(stop)]
    reply, = backend.chat([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}], 1,
                          GenParams(max_tokens=8))
    assert isinstance(reply.text, str) and reply.prompt_tokens > 3
    with pytest.raises(BackendError, match="role must be"):   # any OpenAI role is folded in; others are not
        backend.chat([{"role": "robot", "content": "x"}], 1, GenParams(max_tokens=2))


def test_native_checkpoint_loads_as_hf_with_the_same_greedy_text(native_dir):
    native = load_backend(f"native:{native_dir}")
    hf = load_backend(f"hf:{native_dir}")  # crucible's remote code; its tokenizer adds no BOS: we do
    params = GenParams(max_tokens=12)
    assert hf.complete("def f(x):\n", 1, params)[0].text == native.complete("def f(x):\n", 1, params)[0].text


def test_hf_batch_of_prompts_matches_one_by_one(hf):
    from crucible.tasks.humaneval import load_problems

    problems = load_problems()
    prompts = [problems[t]["prompt"] for t in ("HumanEval/53", "HumanEval/23", "HumanEval/45")]
    prompts.append(TOY_TASK["prompt"])  # prompts of four different lengths: left padding
    params = GenParams(max_tokens=24, stop=tuple(TOY_TASK["stop"]))
    batched = hf.complete_many(prompts, params)
    assert [g.text for g in batched] == [hf.complete(p, 1, params)[0].text for p in prompts]
    assert batched[0].text == problems["HumanEval/53"]["canonical_solution"]
