"""Tool calls in what a model wrote, as OpenAI's `tool_calls`.

Two formats are parsed (docs/generate.md):
- Hermes / Qwen: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, one block per call; the
  format `crucible.model.chat.tools_text` asks native models for. A block whose body is not a JSON
  object with a string `name` stays in the text;
- crucible's python tool tokens: `<|python_start|>code<|python_end|>` becomes a call of a function
  named "python" with arguments {"code": code} (the engine's own tool use, here handed to the client).

Not covered: Llama 3 / Mistral / pythonic tool-call formats, streaming tool calls token by token
(a streamed reply with tools arrives as one delta at the end).
"""

from __future__ import annotations

import json
import re
import uuid

HERMES = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
PYTHON = re.compile(r"<\|python_start\|>(.*?)(?:<\|python_end\|>|$)", re.S)


def parse_tool_calls(text: str) -> tuple[str | None, list[dict]]:
    """(the text left once the calls are taken out, or None if nothing is left; the calls)."""
    calls, spans = [], []
    for m in HERMES.finditer(text):
        try:
            body = json.loads(m.group(1))
        except json.JSONDecodeError:
            continue
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            continue
        arguments = body.get("arguments", body.get("parameters", {}))
        calls.append((m.start(), body["name"], arguments if isinstance(arguments, str) else json.dumps(arguments)))
        spans.append(m.span())
    for m in PYTHON.finditer(text):
        calls.append((m.start(), "python", json.dumps({"code": m.group(1)})))
        spans.append(m.span())
    if not calls:
        return text, []
    rest, last = [], 0
    for start, end in sorted(spans):
        rest.append(text[last:start])
        last = end
    rest.append(text[last:])
    content = "".join(rest).strip()
    tool_calls = [{"id": "call_" + uuid.uuid4().hex[:24], "type": "function",
                   "function": {"name": name, "arguments": arguments}}
                  for _, name, arguments in sorted(calls, key=lambda c: c[0])]
    return content or None, tool_calls
