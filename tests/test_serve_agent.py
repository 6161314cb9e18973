"""An agent's loop against `crucible serve`, as mini-swe-agent 2.4.6 drives it (its message shapes, taken
from a real run: scripts/swe_mini_agent.py), with a scripted model (`crucible.testing.ScriptedModel`)
that asks for `echo hi` and then submits: the tool-calling mode (tools, tool_calls, role: tool) and the
text mode, plus the tool-call fields such clients send (parallel_tool_calls, tool_choice, streaming)."""

from __future__ import annotations

import json
import sys
import urllib.request

import openai
import pytest

from tests.test_serve import start_server
from tests.test_serve_openai import stop

BASH_TOOL = [{"type": "function", "function": {
    "name": "bash", "description": "Execute a bash command",
    "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}]
SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
REPLIES = ['Let me look.\n<tool_call>\n{"name": "bash", "arguments": {"command": "echo hi"}}\n</tool_call>',
           '<tool_call>{"name": "bash", "arguments": {"command": "%s"}}</tool_call>\n'
           '<tool_call>{"name": "bash", "arguments": {"command": "ls"}}</tool_call>' % SUBMIT]
SERVE_SCRIPT = ("import json, sys; from crucible.serve import listen, serve; "
                "from crucible.testing.scripted import ScriptedModel; "
                "serve(ScriptedModel(json.loads(sys.argv[1])), 'scripted', listen('127.0.0.1', 0), quiet=True)")
TASK = [{"role": "system", "content": "You are a helpful assistant that can interact with a computer."},
        {"role": "user", "content": "Please solve this issue: print hi."}]


@pytest.fixture(scope="module")
def scripted():
    proc, url = start_server([sys.executable, "-c", SERVE_SCRIPT, json.dumps(REPLIES)])
    yield openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=60), url
    stop(proc)


def first_turn(client) -> list[dict]:
    """The conversation after the first call, as mini-swe-agent keeps it (the message's model_dump)."""
    reply = client.chat.completions.create(model="scripted", messages=TASK, tools=BASH_TOOL)
    assistant = reply.choices[0].message.model_dump()
    assistant["provider_specific_fields"] = None   # litellm adds this; the server must take it
    call_id = reply.choices[0].message.tool_calls[0].id
    observation = {"role": "tool", "tool_call_id": call_id, "content": '{"returncode": 0, "output": "hi\\n"}'}
    return TASK + [assistant, observation]


def test_tool_mode_runs_a_command_then_submits(scripted):
    client, _ = scripted
    reply = client.chat.completions.create(model="scripted", messages=TASK, tools=BASH_TOOL)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me look."
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"command": "echo hi"}
    second = client.chat.completions.create(model="scripted", messages=first_turn(client), tools=BASH_TOOL)
    commands = [json.loads(c.function.arguments)["command"] for c in second.choices[0].message.tool_calls]
    assert commands == [SUBMIT, "ls"]
    assert second.choices[0].message.content is None


def test_the_tool_result_reaches_the_model(scripted):
    client, url = scripted
    body = json.dumps({"model": "scripted", "messages": first_turn(client), "tools": BASH_TOOL}).encode()
    request = urllib.request.Request(url.removesuffix("/v1") + "/tokenize", body, {"Content-Type": "application/json"})
    tokens = json.loads(urllib.request.urlopen(request, timeout=30).read())["tokens"]
    detokenize = urllib.request.Request(url.removesuffix("/v1") + "/detokenize", json.dumps({"tokens": tokens}).encode(),
                                        {"Content-Type": "application/json"})
    prompt = json.loads(urllib.request.urlopen(detokenize, timeout=30).read())["prompt"]
    assert '<tool_response>\n{"returncode": 0, "output": "hi\\n"}\n</tool_response>' in prompt
    assert '"name": "bash", "arguments": {"command": "echo hi"}' in prompt
    assert '"description": "Execute a bash command"' in prompt


def test_parallel_tool_calls_false_keeps_the_first(scripted):
    client, _ = scripted
    reply = client.chat.completions.create(model="scripted", messages=first_turn(client), tools=BASH_TOOL,
                                           parallel_tool_calls=False)
    commands = [json.loads(c.function.arguments)["command"] for c in reply.choices[0].message.tool_calls]
    assert commands == [SUBMIT]


def test_text_mode_and_tool_choice_none_get_the_text(scripted):
    client, _ = scripted
    for extra in ({}, {"tools": BASH_TOOL, "tool_choice": "none"}):
        reply = client.chat.completions.create(model="scripted", messages=TASK, **extra)
        assert reply.choices[0].message.content == REPLIES[0]
        assert reply.choices[0].finish_reason == "stop"


def test_required_tool_choice_is_refused_by_name(scripted):
    client, _ = scripted
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="scripted", messages=TASK, tools=BASH_TOOL, tool_choice="required")
    assert e.value.body["param"] == "tool_choice"


def test_streamed_tool_calls_have_openais_delta_fields(scripted):
    client, _ = scripted
    chunks = list(client.chat.completions.create(model="scripted", messages=first_turn(client), tools=BASH_TOOL,
                                                 stream=True))
    calls = [c for chunk in chunks for c in (chunk.choices[0].delta.tool_calls or [])]
    assert [c.index for c in calls] == [0, 1]
    assert all(c.id and c.type == "function" and c.function.name == "bash" for c in calls)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_a_script_that_runs_out_is_a_clear_400(scripted):
    client, _ = scripted
    done = first_turn(client) + [{"role": "assistant", "content": "ok"}, {"role": "user", "content": "more"}]
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="scripted", messages=done)
    assert "the script has 2 replies" in e.value.body["message"]
