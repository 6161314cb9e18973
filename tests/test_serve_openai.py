"""`crucible serve` on a native checkpoint, driven by the OpenAI Python SDK as clients drive vLLM:
every chat role, limits, log-probs equal to the model's own, token-id prompts, tokenizer endpoints,
tool calls, streaming usage, many clients at once, and a client that leaves mid-stream."""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import openai
import pytest
import torch

from crucible import testing
from crucible.model.gpt import GPT
from tests.test_serve import start_serve

AGENT_TURNS = [{"role": "system", "content": "You are a helpful assistant."},
               {"role": "user", "content": "Please solve this issue."},
               {"role": "user", "content": "Format error: reply with one bash block."}]


def stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "secret-location-gpt"
    tok = testing.tokenizer()
    testing.random_gpt(tok, seq_len=256).save_pretrained(path, tok)
    return path


@pytest.fixture(scope="module")
def served(checkpoint):
    proc, url = start_serve(f"native:{checkpoint}", "gpt")
    yield proc, url
    stop(proc)


@pytest.fixture(scope="module")
def client(served):
    return openai.OpenAI(base_url=served[1], api_key="none", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def model(checkpoint):
    return GPT.from_pretrained(checkpoint).eval()


def reference_logprobs(model, ids: list[int]) -> list[float]:
    with torch.no_grad():
        scores = torch.log_softmax(model(torch.tensor([ids]))[0].float(), dim=-1)
    return [scores[i - 1, ids[i]].item() for i in range(1, len(ids))]


def test_every_role_is_accepted(client):
    reply = client.chat.completions.create(model="gpt", messages=AGENT_TURNS, max_tokens=4)
    assert reply.choices[0].message.role == "assistant"
    messages = [{"role": "developer", "content": "Be terse."}, {"role": "user", "content": "ls"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{\"command\": \"ls\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "a.py"},
                {"role": "assistant", "content": [{"type": "text", "text": "One file."}]},
                {"role": "assistant", "content": "Done?"}, {"role": "user", "content": "yes"}]
    reply = client.chat.completions.create(model="gpt", messages=messages, max_tokens=4)
    assert reply.usage.prompt_tokens > 20


def test_errors_follow_openai_and_hide_paths(client, checkpoint):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gpt", messages=[{"role": "robot", "content": "x"}])
    assert "role" in e.value.message
    with pytest.raises(openai.NotFoundError) as e:
        client.completions.create(model="other", prompt="x")
    assert str(checkpoint) not in e.value.message
    assert "secret-location" not in json.dumps(e.value.body)


def test_context_limit_and_sizes_are_400s(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="gpt", prompt="x", max_tokens=10 ** 9)
    assert "maximum context length is 256 tokens" in e.value.message
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        client.completions.create(model="gpt", prompt=[5] * 300, max_tokens=1)
    with pytest.raises(openai.BadRequestError, match="seed"):
        client.completions.create(model="gpt", prompt="x", seed=2 ** 70)
    with pytest.raises(openai.BadRequestError, match="n must be"):
        client.completions.create(model="gpt", prompt="x", n=10 ** 6)
    with pytest.raises(openai.BadRequestError, match="response_format"):
        client.chat.completions.create(model="gpt", messages=AGENT_TURNS, response_format={"type": "json_object"})


def test_max_completion_tokens_is_honoured(client):
    reply = client.chat.completions.create(model="gpt", messages=AGENT_TURNS, max_completion_tokens=5,
                                           extra_body={"ignore_eos": True})
    assert reply.usage.completion_tokens == 5
    assert reply.choices[0].finish_reason == "length"


def test_stream_usage_when_asked(client):
    ask = dict(model="gpt", prompt="def", max_tokens=6, temperature=0, extra_body={"ignore_eos": True})
    chunks = list(client.completions.create(stream=True, stream_options={"include_usage": True}, **ask))
    assert chunks[-1].usage.completion_tokens == 6
    assert chunks[-1].choices == []
    streamed = "".join(c.choices[0].text for c in chunks if c.choices)
    assert streamed == client.completions.create(**ask).choices[0].text


def test_completion_logprobs_equal_the_models_own(client, model):
    reply = client.completions.create(model="gpt", prompt="def add(a, b):", max_tokens=6, logprobs=3, echo=True,
                                      temperature=0.7, seed=4, extra_body={"ignore_eos": True})
    lp = reply.choices[0].logprobs
    tok = testing.tokenizer()
    ids = [tok.bos_id] + tok.encode("def add(a, b):")
    generated = [tok.encode(t) if not t.startswith("<|") else [tok.special_id(t)] for t in lp.tokens[len(ids):]]
    assert lp.token_logprobs[0] is None
    assert lp.tokens[:len(ids)] == [tok.decode([t]) for t in ids]
    assert reply.choices[0].text.startswith("def add(a, b):")
    assert all(len(g) == 1 for g in generated)
    want = reference_logprobs(model, ids + [g[0] for g in generated])
    assert max(abs(a - b) for a, b in zip(lp.token_logprobs[1:], want)) < 1e-4
    assert all(len(top) >= 3 for top in lp.top_logprobs[1:])
    assert lp.text_offset[1] == len(lp.tokens[0])


def test_n_samples_in_both_endpoints(client):
    chat = client.chat.completions.create(model="gpt", messages=AGENT_TURNS[1:2], max_tokens=2, n=3)
    completion = client.completions.create(model="gpt", prompt="x", max_tokens=2, n=3)
    assert [c.index for c in chat.choices] == [0, 1, 2]
    assert [c.index for c in completion.choices] == [0, 1, 2]


def test_best_of_returns_the_likeliest_of_its_samples(client):
    drawn = client.completions.create(model="gpt", prompt="def f(x):", max_tokens=5, n=4, seed=9, logprobs=0,
                                      extra_body={"ignore_eos": True}).choices
    best = client.completions.create(model="gpt", prompt="def f(x):", max_tokens=5, n=1, best_of=4, seed=9,
                                     extra_body={"ignore_eos": True}).choices
    likeliest = max(drawn, key=lambda c: sum(c.logprobs.token_logprobs))
    assert len({c.text for c in drawn}) > 1
    assert [c.text for c in best] == [likeliest.text]
    assert best[0].logprobs is None
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="gpt", prompt="x", max_tokens=2, best_of=2, stream=True)
    assert e.value.body["param"] == "best_of"


def test_greedy_tokens_are_their_alternatives_likeliest(client):
    # after "x" the two likeliest tokens are both partial UTF-8 bytes, shown alike as U+FFFD: the
    # text's entry must be the likelier one's, the chosen token's own log-prob (what lm-eval's greedy check reads)
    lp = client.completions.create(model="gpt", prompt="x", max_tokens=4, logprobs=2, temperature=0).choices[0].logprobs
    assert lp.tokens[0] == "\ufffd"
    assert all(top[t] == max(top.values()) == v for t, v, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs))


def test_token_id_prompts_score_without_generating(client, model):
    prompts = [[0, 281, 78, 288, 40], [0, 12, 13]]
    reply = client.completions.create(model="gpt", prompt=prompts, max_tokens=0, echo=True, logprobs=1)
    assert [c.index for c in reply.choices] == [0, 1]
    for prompt, choice in zip(prompts, reply.choices):
        assert len(choice.logprobs.token_logprobs) == len(prompt)
        want = reference_logprobs(model, prompt)
        assert max(abs(a - b) for a, b in zip(choice.logprobs.token_logprobs[1:], want)) < 1e-4
    assert reply.usage.completion_tokens == 0


def test_chat_logprobs(client, model, served):
    reply = client.chat.completions.create(model="gpt", messages=AGENT_TURNS, max_tokens=4, logprobs=True,
                                           top_logprobs=2, extra_body={"ignore_eos": True})
    content = reply.choices[0].logprobs.content
    assert len(content) == 4 and all(len(c.top_logprobs) == 2 for c in content)
    prompt = post(served[1], "/tokenize", {"messages": AGENT_TURNS})["tokens"]
    by_bytes = token_ids_by_bytes(testing.tokenizer())
    generated = [by_bytes[bytes(c.bytes)] for c in content]
    want = reference_logprobs(model, prompt + generated)[len(prompt) - 1:]
    assert max(abs(c.logprob - w) for c, w in zip(content, want)) < 1e-4


def token_ids_by_bytes(tok) -> dict[bytes, int]:
    from crucible.model.tokenizer import _byte_decoder
    decoder = _byte_decoder()
    ids = {bytes(decoder[c] for c in tok.id_to_token(i)): i for i in range(tok.vocab_size) if i not in tok.special_ids}
    return ids | {tok.decode([i]).encode(): i for i in tok.special_ids}


def post(url: str, path: str, body: dict | bytes, headers: dict | None = None) -> dict:
    parts = urlparse(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request("POST", path, body if isinstance(body, bytes) else json.dumps(body), headers or {})
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def test_tokenizer_endpoints(served):
    url = served[1]
    tok = testing.tokenizer()
    ids = post(url, "/tokenize", {"prompt": "def f(x):", "add_special_tokens": False})["tokens"]
    assert ids == tok.encode("def f(x):")
    assert post(url, "/detokenize", {"tokens": ids})["prompt"] == "def f(x):"
    parts = urlparse(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    conn.request("GET", "/tokenizer_info")
    info = json.loads(conn.getresponse().read())
    assert info["vocab_size"] == tok.vocab_size
    assert info["max_model_len"] == 256


def test_models_by_id_and_a_chunked_body(client, served):
    assert client.models.retrieve("gpt").id == "gpt"
    parts = urlparse(served[1])
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    body = json.dumps({"model": "gpt", "prompt": "x", "max_tokens": 3, "extra": "y" * 5000}).encode()
    conn.request("POST", "/v1/completions", body=iter([body[:100], body[100:]]),
                 headers={"Content-Type": "application/json"}, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 200
    assert json.loads(response.read())["usage"]["completion_tokens"] <= 3


def test_sixteen_clients_at_once_get_what_they_get_alone(client):
    prompts = [f"def task_{i}(x):" for i in range(16)]

    def ask(prompt):
        return client.completions.create(model="gpt", prompt=prompt, max_tokens=12, temperature=0,
                                         extra_body={"ignore_eos": True}).choices[0].text
    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(ask, prompts))
    assert together == [ask(p) for p in prompts]


def test_a_client_leaving_mid_stream_is_harmless(client, served):
    stream = client.completions.create(model="gpt", prompt="x", max_tokens=200, stream=True,
                                       extra_body={"ignore_eos": True})
    next(iter(stream))
    stream.close()
    reply = client.completions.create(model="gpt", prompt="x", max_tokens=2)
    assert reply.choices[0].finish_reason in ("length", "stop")


def test_no_traceback_in_the_log(checkpoint):
    """A fresh server, a client that vanishes mid-stream, then a clean shutdown: nothing on stderr."""
    proc, url = start_serve(f"native:{checkpoint}", "gpt")
    try:
        quick = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=60)
        stream = quick.chat.completions.create(model="gpt", messages=AGENT_TURNS, max_tokens=150, stream=True,
                                               extra_body={"ignore_eos": True})
        next(iter(stream))
        stream.close()
        assert quick.completions.create(model="gpt", prompt="x", max_tokens=2).usage.completion_tokens <= 2
    finally:
        err = stop(proc)
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def tool_server(tmp_path_factory):
    """A native model scripted (one token decides the next) to answer every chat with a python call."""
    tok = testing.tokenizer()
    s = tok.special_id
    code = tok.encode(" return")[0]
    script = {s("assistant_start"): s("python_start"), s("python_start"): code, code: s("python_end"),
              s("python_end"): s("assistant_end")}
    path = tmp_path_factory.mktemp("tools") / "scripted"
    scripted = testing.bigram_gpt(tok, script, s("assistant_end"))
    scripted.config.seq_len = 2048   # room for the tool schemas in the prompt
    scripted.save_pretrained(path, tok)
    proc, url = start_serve(f"native:{path}", "scripted")
    yield openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=60), tok.decode([code])
    stop(proc)


PYTHON_TOOL = [{"type": "function", "function": {"name": "python", "parameters": {
    "type": "object", "properties": {"code": {"type": "string"}}}}}]


def test_tool_calls_are_parsed_from_python_tokens(tool_server):
    tool_server, code = tool_server
    reply = tool_server.chat.completions.create(model="scripted", messages=AGENT_TURNS, tools=PYTHON_TOOL,
                                                temperature=0)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call, = choice.message.tool_calls
    assert call.function.name == "python"
    assert json.loads(call.function.arguments) == {"code": code}
    plain = tool_server.chat.completions.create(model="scripted", messages=AGENT_TURNS, temperature=0)
    assert plain.choices[0].message.tool_calls is None
    assert plain.choices[0].message.content == f"<|python_start|>{code}<|python_end|>"


def test_streamed_tool_calls_arrive_whole(tool_server):
    tool_server, _ = tool_server
    chunks = list(tool_server.chat.completions.create(model="scripted", messages=AGENT_TURNS, tools=PYTHON_TOOL,
                                                      temperature=0, stream=True))
    calls = [c for chunk in chunks for c in (chunk.choices[0].delta.tool_calls or [])]
    assert [c.function.name for c in calls] == ["python"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
