"""Tool calls parsed from model text: Hermes/Qwen <tool_call> blocks and crucible's python tokens."""

import json

from crucible.serve.tools import parse_tool_calls


def test_hermes_blocks_become_calls_and_leave_the_prose():
    text = ('Let me look.\n<tool_call>\n{"name": "bash", "arguments": {"command": "ls -la"}}\n</tool_call>\n'
            '<tool_call>{"name": "read", "arguments": {"path": "a.py"}}</tool_call>')
    content, calls = parse_tool_calls(text)
    assert content == "Let me look."
    assert [c["function"]["name"] for c in calls] == ["bash", "read"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"command": "ls -la"}
    assert len({c["id"] for c in calls}) == 2


def test_python_tokens_become_a_python_call():
    content, calls = parse_tool_calls("<|python_start|>print(6*7)<|python_end|>")
    assert content is None
    assert json.loads(calls[0]["function"]["arguments"]) == {"code": "print(6*7)"}


def test_malformed_blocks_stay_text():
    text = "<tool_call>{not json}</tool_call> and <tool_call>[1, 2]</tool_call>"
    assert parse_tool_calls(text) == (text, [])
