"""The OpenAI Python SDK against `crucible serve`: one probe per thing a client may ask, N of M pass.

A probe passes when the server does what OpenAI's (or vLLM's, for its extensions) would do with the
same request: the right shape, the right numbers, or the same 400/404. A feature the server refuses
on purpose (penalties, logit_bias, constrained decoding: docs/generate.md, "Refused, not ignored")
is a failing probe, reported with its reason, not left out. Issue 11 started from "41 of 57 SDK
probes passed"; that probe script was not kept, so this one re-states the probes from the issue's
list (every role, limits, log-probs, streaming, tools, errors, concurrency) and adds the SDK's
helpers (stream accumulation, parse).

Two servers: a random tiny native GPT (most probes) and `crucible.testing.ScriptedModel` replaying
a tool call (tool probes; a random model never writes one). Not a test: a survey whose output goes
into docs/generate.md; tests/test_serve_openai.py and tests/test_serve_agent.py assert the same
behaviour one claim at a time.

    python bench/serve_sdk_probes.py
"""

from __future__ import annotations

import asyncio
import http.client
import json
import sys
import tempfile
import traceback
from pathlib import Path
from urllib.parse import urlparse

import openai
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.test_serve import start_serve, start_server  # noqa: E402
from tests.test_serve_agent import BASH_TOOL, REPLIES, SERVE_SCRIPT, TASK  # noqa: E402
from tests.test_serve_openai import stop  # noqa: E402

PROBES: list = []   # (name, server, function)
HI = [{"role": "user", "content": "Say hi."}]


def probe(server: str = "gpt"):
    def register(fn):
        PROBES.append((fn.__name__, server, fn))
        return fn
    return register


def refused(call, param: str | None = None, status: int = 400):
    """The call is answered `status` (naming `param`, if given) in OpenAI's error shape."""
    try:
        call()
    except openai.APIStatusError as e:
        assert e.status_code == status, f"status {e.status_code}, wanted {status}"
        assert isinstance(e.body, dict) and "message" in e.body, f"error body {e.body!r}"
        assert param is None or e.body.get("param") == param, f"param {e.body.get('param')!r}, wanted {param!r}"
        return e
    raise AssertionError(f"accepted, wanted a {status}")


def raw(url: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.getheader("content-type"), r.read()


# -- models and health -----------------------------------------------------------------------------
@probe()
def models_list(c, url):
    assert [m.id for m in c.models.list()] == ["gpt"]


@probe()
def models_retrieve(c, url):
    assert c.models.retrieve("gpt").id == "gpt"


@probe()
def models_retrieve_unknown_is_404(c, url):
    refused(lambda: c.models.retrieve("nope"), status=404)


@probe()
def health(c, url):
    assert raw(url, "GET", "/health")[0] == 200


# -- completions -----------------------------------------------------------------------------------
@probe()
def completion_string_prompt_and_usage(c, url):
    r = c.completions.create(model="gpt", prompt="def f(x):", max_tokens=5, temperature=0)
    assert r.object == "text_completion" and r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


@probe()
def completion_list_of_prompts(c, url):
    r = c.completions.create(model="gpt", prompt=["a", "b"], max_tokens=2)
    assert [ch.index for ch in r.choices] == [0, 1]


@probe()
def completion_token_id_prompt(c, url):
    assert len(c.completions.create(model="gpt", prompt=[5, 6, 7], max_tokens=2).choices) == 1


@probe()
def completion_token_id_prompts(c, url):
    assert len(c.completions.create(model="gpt", prompt=[[5, 6], [7, 8]], max_tokens=2).choices) == 2


@probe()
def completion_n(c, url):
    assert len(c.completions.create(model="gpt", prompt="x", n=3, max_tokens=2).choices) == 3


@probe()
def completion_max_tokens(c, url):
    assert c.completions.create(model="gpt", prompt="x", max_tokens=3).usage.completion_tokens <= 3


@probe()
def completion_stop(c, url):
    whole = c.completions.create(model="gpt", prompt="def f(x):", max_tokens=24, temperature=0).choices[0].text
    cut = whole[len(whole) // 2:len(whole) // 2 + 2]
    r = c.completions.create(model="gpt", prompt="def f(x):", max_tokens=24, temperature=0, stop=[cut])
    assert r.choices[0].text == whole[:whole.index(cut)] and r.choices[0].finish_reason == "stop"


@probe()
def completion_seed_repeats(c, url):
    a, b = (c.completions.create(model="gpt", prompt="x", max_tokens=8, seed=7, temperature=1) for _ in range(2))
    assert a.choices[0].text == b.choices[0].text


@probe()
def completion_greedy_repeats(c, url):
    a, b = (c.completions.create(model="gpt", prompt="x", max_tokens=8, temperature=0) for _ in range(2))
    assert a.choices[0].text == b.choices[0].text


@probe()
def completion_logprobs(c, url):
    lp = c.completions.create(model="gpt", prompt="x", max_tokens=4, logprobs=2, temperature=0).choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) > 0
    assert all(top[t] == max(top.values()) == v for t, v, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs))


@probe()
def completion_echo(c, url):
    ch = c.completions.create(model="gpt", prompt="def f", max_tokens=2, logprobs=0, echo=True).choices[0]
    assert ch.text.startswith("def f") and ch.logprobs.token_logprobs[0] is None


@probe()
def completion_score_only(c, url):
    ch = c.completions.create(model="gpt", prompt="def f(x):", max_tokens=0, logprobs=1, echo=True).choices[0]
    assert ch.text == "def f(x):" and all(v is not None for v in ch.logprobs.token_logprobs[1:])


@probe()
def completion_stream_equals_whole(c, url):
    whole = c.completions.create(model="gpt", prompt="x", max_tokens=8, temperature=0).choices[0].text
    parts = [ch.choices[0].text for ch in c.completions.create(model="gpt", prompt="x", max_tokens=8,
                                                                temperature=0, stream=True) if ch.choices]
    assert "".join(parts) == whole


@probe()
def completion_stream_usage(c, url):
    chunks = list(c.completions.create(model="gpt", prompt="x", max_tokens=3, stream=True,
                                       stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens <= 3


@probe()
def completion_top_p_and_top_k(c, url):
    c.completions.create(model="gpt", prompt="x", max_tokens=2, top_p=0.5, extra_body={"top_k": 5})


@probe()
def completion_best_of(c, url):
    assert len(c.completions.create(model="gpt", prompt="x", max_tokens=2, n=1, best_of=2).choices) == 1


@probe()
def completion_suffix(c, url):
    c.completions.create(model="gpt", prompt="def f(", suffix="):\n", max_tokens=2)


@probe()
def completion_logit_bias(c, url):
    r = c.completions.create(model="gpt", prompt="x", max_tokens=3, temperature=0, logit_bias={"65": 100})
    assert set(c.completions.create(model="gpt", prompt=[65], max_tokens=0, echo=True, logprobs=0)
               .choices[0].text) <= set(r.choices[0].text)


@probe()
def completion_penalties(c, url):
    c.completions.create(model="gpt", prompt="x", max_tokens=3, frequency_penalty=0.5, presence_penalty=0.5)


@probe()
def completion_zero_penalties(c, url):   # what many clients send by default
    c.completions.create(model="gpt", prompt="x", max_tokens=3, frequency_penalty=0, presence_penalty=0)


# -- chat ------------------------------------------------------------------------------------------
@probe()
def chat_basic(c, url):
    r = c.chat.completions.create(model="gpt", messages=HI, max_tokens=4)
    assert r.object == "chat.completion" and r.choices[0].message.role == "assistant"


@probe()
def chat_system_developer_consecutive(c, url):
    c.chat.completions.create(model="gpt", max_tokens=2, messages=[
        {"role": "system", "content": "s"}, {"role": "developer", "content": "d"},
        {"role": "user", "content": "a"}, {"role": "user", "content": "b"}])


@probe()
def chat_tool_turns(c, url):
    c.chat.completions.create(model="gpt", max_tokens=2, messages=HI + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{\"command\": \"ls\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "a.py"}])


@probe()
def chat_text_parts(c, url):
    c.chat.completions.create(model="gpt", max_tokens=2, messages=[
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])


@probe()
def chat_image_part_is_400(c, url):
    refused(lambda: c.chat.completions.create(model="gpt", max_tokens=2, messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]))


@probe()
def chat_max_completion_tokens(c, url):
    r = c.chat.completions.create(model="gpt", messages=HI, max_completion_tokens=5, extra_body={"ignore_eos": True})
    assert r.usage.completion_tokens == 5


@probe()
def chat_stream_shape(c, url):
    chunks = list(c.chat.completions.create(model="gpt", messages=HI, max_tokens=4, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason is not None


@probe()
def chat_stream_usage(c, url):
    chunks = list(c.chat.completions.create(model="gpt", messages=HI, max_tokens=3, stream=True,
                                            stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].choices == []


@probe("scripted")   # the helper refuses a reply cut at max_tokens: the scripted model's ends
def chat_stream_helper(c, url):
    with c.chat.completions.stream(model="scripted", messages=TASK) as s:
        final = s.get_final_completion()
    assert final.choices[0].message.content == REPLIES[0]


@probe()
def chat_logprobs(c, url):
    lp = c.chat.completions.create(model="gpt", messages=HI, max_tokens=3, logprobs=True, top_logprobs=2,
                                   temperature=0).choices[0].logprobs
    assert lp.content and all(len(t.top_logprobs) == 2 and t.bytes for t in lp.content)


@probe()
def chat_top_logprobs_needs_logprobs(c, url):
    refused(lambda: c.chat.completions.create(model="gpt", messages=HI, max_tokens=2, top_logprobs=2), "top_logprobs")


@probe()
def chat_response_format_text(c, url):
    c.chat.completions.create(model="gpt", messages=HI, max_tokens=2, response_format={"type": "text"})


@probe()
def chat_response_format_json(c, url):
    r = c.chat.completions.create(model="gpt", messages=HI, max_tokens=16, response_format={"type": "json_object"})
    json.loads(r.choices[0].message.content)


@probe()
def chat_parse_pydantic(c, url):
    class Answer(BaseModel):
        text: str
    c.chat.completions.parse(model="gpt", messages=HI, max_tokens=16, response_format=Answer)


@probe()
def chat_n(c, url):
    assert len(c.chat.completions.create(model="gpt", messages=HI, max_tokens=2, n=2).choices) == 2


@probe()
def chat_seed_repeats(c, url):
    a, b = (c.chat.completions.create(model="gpt", messages=HI, max_tokens=6, seed=3) for _ in range(2))
    assert a.choices[0].message.content == b.choices[0].message.content


@probe()
def chat_user_metadata_store(c, url):
    c.chat.completions.create(model="gpt", messages=HI, max_tokens=2, user="u", metadata={"k": "v"}, store=False)


# -- limits and errors -----------------------------------------------------------------------------
@probe()
def context_overflow_is_400(c, url):
    e = refused(lambda: c.completions.create(model="gpt", prompt="x " * 400, max_tokens=8))
    assert e.body.get("code") == "context_length_exceeded"


@probe()
def huge_max_tokens_is_400(c, url):
    refused(lambda: c.completions.create(model="gpt", prompt="x", max_tokens=10**9))


@probe()
def huge_seed_is_400(c, url):
    refused(lambda: c.completions.create(model="gpt", prompt="x", max_tokens=2, seed=2**70), "seed")


@probe()
def huge_n_is_400(c, url):
    refused(lambda: c.completions.create(model="gpt", prompt="x", max_tokens=2, n=1000), "n")


@probe()
def bad_temperature_is_400(c, url):
    refused(lambda: c.completions.create(model="gpt", prompt="x", max_tokens=2, temperature=3), "temperature")


@probe()
def too_many_logprobs_is_400(c, url):
    refused(lambda: c.completions.create(model="gpt", prompt="x", max_tokens=2, logprobs=50), "logprobs")


@probe()
def unknown_model_is_404(c, url):
    refused(lambda: c.completions.create(model="other", prompt="x", max_tokens=2), "model", 404)


@probe()
def bad_json_is_400(c, url):
    status, kind, body = raw(url, "POST", "/v1/completions", b"{not json", {"Content-Type": "application/json"})
    assert status == 400 and "json" in kind and "error" in json.loads(body)


@probe()
def unknown_route_is_404(c, url):
    status, _, body = raw(url, "GET", "/v1/nothing")
    assert status == 404 and "error" in json.loads(body)


@probe()
def errors_hide_paths(c, url):
    e = refused(lambda: c.completions.create(model="/srv/models/secret/gpt", prompt="x", max_tokens=2), status=404)
    assert "/srv/models" not in e.body["message"]


@probe()
def chunked_body(c, url):
    body = json.dumps({"model": "gpt", "prompt": "x", "max_tokens": 2}).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:10], body[10:])) + b"0\r\n\r\n"
    status, _, out = raw(url, "POST", "/v1/completions", chunked, {"Transfer-Encoding": "chunked",
                                                                   "Content-Type": "application/json"})
    assert status == 200 and json.loads(out)["choices"]


@probe()
def tokenize_roundtrip(c, url):
    status, _, out = raw(url, "POST", "/tokenize", json.dumps({"prompt": "def f", "add_special_tokens": False}).encode())
    tokens = json.loads(out)["tokens"]
    assert json.loads(raw(url, "POST", "/detokenize", json.dumps({"tokens": tokens}).encode())[2])["prompt"] == "def f"


@probe()
def raw_response_headers(c, url):
    r = c.completions.with_raw_response.create(model="gpt", prompt="x", max_tokens=2)
    assert "application/json" in r.headers["content-type"] and r.parse().choices


@probe()
def sixteen_async_clients(c, url):
    async def many():
        async with openai.AsyncOpenAI(base_url=url, api_key="none", max_retries=0) as ac:
            return await asyncio.gather(*(ac.completions.create(model="gpt", prompt=f"f{i}", max_tokens=4)
                                          for i in range(16)))
    assert len(asyncio.run(many())) == 16


@probe()
def client_leaves_mid_stream(c, url):
    stream = c.completions.create(model="gpt", prompt="x", max_tokens=200, stream=True, extra_body={"ignore_eos": True})
    next(iter(stream))
    stream.close()
    assert c.completions.create(model="gpt", prompt="x", max_tokens=2).choices


# -- tools (the scripted server) ------------------------------------------------------------------
@probe("scripted")
def tool_calls_parsed(c, url):
    ch = c.chat.completions.create(model="scripted", messages=TASK, tools=BASH_TOOL).choices[0]
    assert ch.finish_reason == "tool_calls" and json.loads(ch.message.tool_calls[0].function.arguments)


@probe("scripted")
def tool_choice_none(c, url):
    ch = c.chat.completions.create(model="scripted", messages=TASK, tools=BASH_TOOL, tool_choice="none").choices[0]
    assert ch.message.tool_calls is None and ch.message.content == REPLIES[0]


@probe("scripted")
def tool_choice_required(c, url):
    ch = c.chat.completions.create(model="scripted", messages=TASK, tools=BASH_TOOL, tool_choice="required").choices[0]
    assert ch.message.tool_calls


@probe("scripted")
def tool_choice_named(c, url):
    ch = c.chat.completions.create(model="scripted", messages=TASK, tools=BASH_TOOL,
                                   tool_choice={"type": "function", "function": {"name": "bash"}}).choices[0]
    assert ch.message.tool_calls[0].function.name == "bash"


@probe("scripted")
def parallel_tool_calls_false(c, url):
    turn = [{"role": "assistant", "content": "ok"}, {"role": "user", "content": "go on"}]
    ch = c.chat.completions.create(model="scripted", messages=TASK + turn, tools=BASH_TOOL,
                                   parallel_tool_calls=False).choices[0]
    assert len(ch.message.tool_calls) == 1


@probe("scripted")
def tool_calls_streamed(c, url):
    with c.chat.completions.stream(model="scripted", messages=TASK, tools=BASH_TOOL) as s:
        final = s.get_final_completion()
    assert final.choices[0].message.tool_calls[0].function.name == "bash"


@probe("scripted")
def tool_strict_schema_field(c, url):
    tools = [{**BASH_TOOL[0], "function": {**BASH_TOOL[0]["function"], "strict": True}}]
    assert c.chat.completions.create(model="scripted", messages=TASK, tools=tools).choices[0].message.tool_calls


def main() -> int:
    from crucible import testing

    root = Path(tempfile.mkdtemp(prefix="crucible-probes-"))
    tok = testing.tokenizer()
    testing.random_gpt(tok, seq_len=256).save_pretrained(root / "gpt", tok)
    servers = {"gpt": start_serve(f"native:{root / 'gpt'}", "gpt"),
               "scripted": start_server([sys.executable, "-c", SERVE_SCRIPT, json.dumps(REPLIES)])}
    failed = []
    try:
        for name, server, fn in PROBES:
            url = servers[server][1]
            client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=60)
            try:
                fn(client, url)
                print(f"pass  {name}")
            except Exception as e:  # noqa: BLE001 - a probe's failure is its report
                reason = str(e).splitlines()[0][:160] if str(e) else traceback.format_exc(limit=1).splitlines()[-1]
                failed.append(name)
                print(f"FAIL  {name}: {type(e).__name__}: {reason}")
    finally:
        for proc, _ in servers.values():
            stop(proc)
    print(f"{len(PROBES) - len(failed)} of {len(PROBES)} SDK probes passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
