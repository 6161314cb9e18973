"""Render a chat conversation to token ids and a loss mask, in one pass (nanochat's format).

    <|bos|><|user_start|>...<|user_end|><|assistant_start|>...<|assistant_end|><|user_start|>...

A conversation is `{"messages": [...]}` or the list itself; each message has a `role` ("system",
"user", "assistant") and a `content`. An assistant's content is a string or a list of parts:
`{"type": "text", "text": ...}`, `{"type": "python", "text": code}` (rendered between
<|python_start|> and <|python_end|>) and `{"type": "python_output", "text": result}` (between
<|output_start|> and <|output_end|>). A system message is folded into the first user turn
(system text, a blank line, the user text): the format has no system role.

The mask is 1 on what the model should learn to write: the assistant's text and code and the
<|assistant_end|> that closes each turn. It is 0 on everything else: <|bos|>, the user's turns,
<|assistant_start|>, and tool output (at inference the engine forces those tokens, so the model is
never asked to predict them). Rendering ids and mask together keeps them aligned by construction.

`render_for_completion` gives the prompt for the engine: the conversation without its final
assistant turn, followed by <|assistant_start|>. The same format is the chat template saved with
the tokenizer (`tokenizer.CHAT_TEMPLATE`), for vLLM and transformers.

`render_conversation` insists on the format's shape: strict user/assistant turns.
`render_for_completion` (serving) first folds any well-formed OpenAI message list into that shape
(`fold_messages`), the same way the chat template does, and so does SFT (crucible.posttrain.render),
so a tool-call conversation trains on the tokens serving shows: the <tool_call> text trained, the
<tool_response> user text masked:
- system and developer messages join the next user turn's text (after a blank line); one left at
  the end becomes a user turn; `tools` (OpenAI function schemas) become a system text first
  (`tools_text`, Hermes/Qwen style: the schemas inside <tools></tools>, calls written as
  <tool_call>{"name": ..., "arguments": ...}</tool_call>);
- consecutive user (or tool) messages are one user turn, joined by a blank line; consecutive
  assistant messages are one assistant turn;
- a tool result is user text `<tool_response>\n{content}\n</tool_response>` (Qwen's rendering);
- an assistant's tool_calls are appended to its text as <tool_call> blocks; null content is "";
- a conversation that starts with an assistant gets an empty user turn first.

Not covered: multiple tool languages, images, or a separate system role.
"""

from __future__ import annotations

import json


def _messages(conversation) -> list[dict]:
    messages = conversation["messages"] if isinstance(conversation, dict) else conversation
    if not isinstance(messages, list) or not messages:
        raise ValueError("a conversation needs a non-empty list of messages")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise ValueError(f"message {i}: needs a role of system, user or assistant")
        if "content" not in m:
            raise ValueError(f"message {i}: has no content")
        out.append(m)
    if out[0]["role"] == "system":
        if len(out) < 2 or out[1]["role"] != "user":
            raise ValueError("message 1: a system message must be followed by a user message")
        if not isinstance(out[1]["content"], str) or not isinstance(out[0]["content"], str):
            raise ValueError("message 0: system and user contents must be strings")
        out = [{"role": "user", "content": out[0]["content"] + "\n\n" + out[1]["content"]}] + out[2:]
        offset = 1
    else:
        offset = 0
    for i, m in enumerate(out):
        expected = "user" if i % 2 == 0 else "assistant"
        if m["role"] != expected:
            raise ValueError(f"message {i + offset}: expected a {expected} message, got {m['role']} "
                             "(turns alternate user/assistant, after an optional system message)")
    return out


def _assistant_parts(content, index: int) -> list[tuple[str, str]]:
    if isinstance(content, str):
        return [("text", content)]
    if not isinstance(content, list):
        raise ValueError(f"message {index}: assistant content must be a string or a list of parts")
    parts = []
    for part in content:
        kind, text = (part.get("type"), part.get("text")) if isinstance(part, dict) else (None, None)
        if kind not in ("text", "python", "python_output") or not isinstance(text, str):
            raise ValueError(f"message {index}: parts are {{'type': text|python|python_output, 'text': str}}")
        parts.append((kind, text))
    return parts


def render_conversation(tokenizer, conversation, *, max_tokens: int | None = None) -> tuple[list[int], list[int]]:
    """(ids, mask) for supervised fine-tuning; truncated to `max_tokens` if given."""
    sid = tokenizer.special_id
    ids, mask = [], []

    def add(tokens, learn: int):
        ids.extend(tokens)
        mask.extend([learn] * len(tokens))

    add([tokenizer.bos_id], 0)
    for i, m in enumerate(_messages(conversation)):
        if m["role"] == "user":
            if not isinstance(m["content"], str):
                raise ValueError(f"message {i}: user content must be a string")
            add([sid("user_start"), *tokenizer.encode(m["content"]), sid("user_end")], 0)
            continue
        add([sid("assistant_start")], 0)
        for kind, text in _assistant_parts(m["content"], i):
            if kind == "text":
                add(tokenizer.encode(text), 1)
            elif kind == "python":
                add([sid("python_start"), *tokenizer.encode(text), sid("python_end")], 1)
            else:
                add([sid("output_start"), *tokenizer.encode(text), sid("output_end")], 0)
        add([sid("assistant_end")], 1)
    if max_tokens is not None:
        ids, mask = ids[:max_tokens], mask[:max_tokens]
    return ids, mask


def render_for_completion(tokenizer, conversation, tools: list | None = None) -> list[int]:
    """Prompt ids: the conversation folded into user/assistant turns (`fold_messages`), minus a final
    assistant turn, and <|assistant_start|>."""
    messages = fold_messages(conversation["messages"] if isinstance(conversation, dict) else conversation, tools)
    if messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    ids, _ = render_conversation(tokenizer, messages)
    return ids + [tokenizer.special_id("assistant_start")]


def completion_parts(tokenizer, ids: list[int]) -> list[dict]:
    """An engine completion's ids back to assistant parts (the inverse of rendering one turn)."""
    sid = tokenizer.special_id
    opening = {sid("python_start"): ("python", sid("python_end")), sid("output_start"): ("python_output", sid("output_end"))}
    parts, current, kind, closing = [], [], "text", None
    def flush():
        if current or kind != "text":
            parts.append({"type": kind, "text": tokenizer.decode(current)})
    for t in ids:
        if t in (sid("assistant_end"), tokenizer.bos_id):
            break
        if closing is None and t in opening:
            flush()
            current, (kind, closing) = [], opening[t]
        elif closing is not None and t == closing:
            flush()
            current, kind, closing = [], "text", None
        else:
            current.append(t)
    if current:
        flush()
    return parts


def _text(content, index: int) -> str:
    """A message's text: a string, null, or OpenAI's list of {"type": "text", "text": ...} parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and isinstance(p.get("text", ""), str) for p in content):
        return "".join(p.get("text", "") for p in content)
    raise ValueError(f"message {index}: content must be a string, null or a list of text parts")


def tool_call_text(call: dict) -> str:
    """One OpenAI tool call as the model writes it. `arguments` (a JSON string in OpenAI's API) is
    written as it is; a dict is written as JSON."""
    function = call.get("function", call)
    arguments = function.get("arguments", {})
    arguments = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return f'<tool_call>\n{{"name": {json.dumps(function.get("name"), ensure_ascii=False)}, "arguments": {arguments}}}\n</tool_call>'


def tools_text(tools: list) -> str:
    """The tool schemas as a system text (Hermes/Qwen style)."""
    schemas = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    return ("# Tools\n\nYou may call one or more functions to assist with the user query. The function "
            f"signatures are within <tools></tools>:\n<tools>\n{schemas}\n</tools>\n\nFor each call, write "
            '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>')


def fold_messages(messages: list, tools: list | None = None) -> list[dict]:
    """Any well-formed OpenAI message list as alternating user/assistant messages (module docstring)."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("a conversation needs a non-empty list of messages")
    turns: list[dict] = []
    system = [tools_text(tools)] if tools else []

    def user(text: str) -> None:
        nonlocal system
        text = "\n\n".join(system + ([text] if text or not system else []))
        system = []
        if turns and turns[-1]["role"] == "user":
            turns[-1]["content"] += "\n\n" + text
        else:
            turns.append({"role": "user", "content": text})

    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        if role in ("system", "developer"):
            system.append(_text(m.get("content"), i))
        elif role == "user":
            user(_text(m.get("content"), i))
        elif role == "tool":
            user(f"<tool_response>\n{_text(m.get('content'), i)}\n</tool_response>")
        elif role == "assistant":
            content = m.get("content")
            parts = _assistant_parts(content, i) if isinstance(content, list) and any(
                isinstance(p, dict) and p.get("type") in ("python", "python_output") for p in content) \
                else [("text", _text(content, i))]
            calls = m.get("tool_calls") or []
            if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
                raise ValueError(f"message {i}: tool_calls must be a list of objects")
            parts += [("text", tool_call_text(c)) for c in calls]
            if not turns:
                user("")
            if turns[-1]["role"] != "assistant":
                turns.append({"role": "assistant", "content": []})
            for kind, text in parts:   # adjacent text parts are one text: tokenized as the template's
                if kind == "text" and turns[-1]["content"] and turns[-1]["content"][-1]["type"] == "text":
                    turns[-1]["content"][-1]["text"] += text
                else:
                    turns[-1]["content"].append({"type": kind, "text": text})
        else:
            raise ValueError(f"message {i}: role must be system, developer, user, assistant or tool")
    if system:
        user("")
    return turns
