"""Request bodies of the OpenAI API, checked: every field crucible honours, limits as vLLM sets them.

Each check raises `RequestError` (HTTP 400 unless said otherwise) with a message that names the
field, never a file path. Fields that would change the output but are not implemented (penalties,
logit_bias, suffix, response_format other than text, tool_choice other than auto/none) are refused,
not ignored; fields that change nothing here (user, metadata, store, service_tier, stream_options
without include_usage) are accepted. `parallel_tool_calls: false` keeps a reply's first tool call only.

`best_of` (completions): best_of samples are drawn and the n with the highest total log-prob (raw
distribution, before temperature) returned; it cannot be streamed, as with OpenAI.

Limits: prompt + max_tokens must fit the model's context (400 "maximum context length", vLLM's
wording); n <= MAX_N; at most MAX_LOGPROBS alternatives; seeds within torch's 64-bit range.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_N = 128
MAX_LOGPROBS = 20
SEED_RANGE = (-(1 << 63), (1 << 64) - 1)   # what torch.Generator.manual_seed takes


class RequestError(ValueError):
    def __init__(self, message: str, status: int = 400, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.param, self.code = status, param, code


@dataclass
class Options:
    """What one /v1/completions or /v1/chat/completions request asks for."""
    n: int = 1
    max_tokens: int | None = None      # None: the endpoint's default
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    include_usage: bool = False
    logprobs: int | None = None        # alternatives per generated token; None: no log-probs
    echo: bool = False
    ignore_eos: bool = False
    best_of: int = 1                   # samples drawn (completions may ask > n: the n likeliest returned)
    tools: list = field(default_factory=list)
    parallel_tool_calls: bool = True   # False: at most one tool call per reply


def number(body: dict, key: str, kind, default, lo=None, hi=None):
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise RequestError(f"{key} must be {'an integer' if kind is int else 'a number'}, got {value!r}", param=key)
    value = kind(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise RequestError(f"{key} must be {bounds}, got {value}", param=key)
    return value


def flag(body: dict, key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RequestError(f"{key} must be true or false, got {value!r}", param=key)
    return value


def parse_options(body: dict, chat: bool) -> Options:
    refuse_unsupported(body, chat)
    opts = Options(n=number(body, "n", int, 1, 1, MAX_N),
                   temperature=number(body, "temperature", float, 1.0, 0.0, 2.0),
                   top_p=number(body, "top_p", float, 1.0, 0.0, 1.0),
                   top_k=max(0, number(body, "top_k", int, 0, -1)),   # vLLM's -1 means off
                   stream=flag(body, "stream"), ignore_eos=flag(body, "ignore_eos"))
    opts.best_of = opts.n
    if opts.top_p == 0:
        raise RequestError("top_p must be in (0, 1], got 0", param="top_p")
    key = "max_completion_tokens" if chat and body.get("max_completion_tokens") is not None else "max_tokens"
    opts.max_tokens = number(body, key, int, None, 0 if not chat else 1)
    seed = body.get("seed")
    if seed is not None:
        opts.seed = number(body, "seed", int, None, *SEED_RANGE)
    stop = body.get("stop") or ()
    if isinstance(stop, str):
        stop = (stop,)
    if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) for s in stop):
        raise RequestError("stop must be a string or a list of strings", param="stop")
    opts.stop = tuple(s for s in stop if s)
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise RequestError("stream_options must be an object", param="stream_options")
    opts.include_usage = bool(stream_options.get("include_usage"))
    if chat:
        if flag(body, "logprobs"):
            opts.logprobs = number(body, "top_logprobs", int, 0, 0, MAX_LOGPROBS)
        elif body.get("top_logprobs") is not None:
            raise RequestError("top_logprobs needs logprobs: true", param="top_logprobs")
        opts.tools = parse_tools(body)
        opts.parallel_tool_calls = body.get("parallel_tool_calls") is None or flag(body, "parallel_tool_calls")
    else:
        opts.logprobs = number(body, "logprobs", int, None, 0, MAX_LOGPROBS)
        opts.best_of = number(body, "best_of", int, opts.n, opts.n, MAX_N)
        if opts.best_of > opts.n and opts.stream:
            raise RequestError("best_of > n cannot be streamed (OpenAI's rule)", param="best_of")
        opts.echo = flag(body, "echo")
        if opts.max_tokens == 0 and not opts.echo:
            raise RequestError("max_tokens 0 generates nothing: use it with echo to score the prompt",
                               param="max_tokens")
    return opts


def refuse_unsupported(body: dict, chat: bool) -> None:
    for key in ("frequency_penalty", "presence_penalty"):
        if body.get(key) not in (None, 0, 0.0):
            raise RequestError(f"{key} is not supported by this server", param=key)
    if body.get("repetition_penalty") not in (None, 1, 1.0):
        raise RequestError("repetition_penalty is not supported by this server", param="repetition_penalty")
    if body.get("logit_bias"):
        raise RequestError("logit_bias is not supported by this server", param="logit_bias")
    if not chat and body.get("suffix"):
        raise RequestError("suffix is not supported by this server", param="suffix")
    response_format = body.get("response_format")
    if response_format is not None and (not isinstance(response_format, dict) or response_format.get("type") != "text"):
        raise RequestError("response_format other than {\"type\": \"text\"} is not supported by this server "
                           "(no constrained decoding)", param="response_format")


def parse_tools(body: dict) -> list:
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(
            isinstance(t, dict) and isinstance(t.get("function"), dict) and isinstance(t["function"].get("name"), str)
            for t in tools):
        raise RequestError("tools must be a list of {\"type\": \"function\", \"function\": {\"name\": ...}}",
                           param="tools")
    choice = body.get("tool_choice")
    if choice in (None, "auto"):
        return tools
    if choice == "none":
        return []
    raise RequestError("tool_choice must be \"auto\" or \"none\" here (no constrained decoding for required "
                       "or named calls)", param="tool_choice")


def parse_prompts(body: dict, vocab_size: int) -> list[str | list[int]]:
    """A string, a list of strings, a list of token ids, or a list of such lists."""
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, str) for p in prompt):
            return prompt
        if is_token_ids(prompt):
            prompts = [prompt]
        elif all(isinstance(p, list) and p and is_token_ids(p) for p in prompt):
            prompts = prompt
        else:
            prompts = None
        if prompts is not None:
            bad = [t for p in prompts for t in p if not 0 <= t < vocab_size]
            if bad:
                raise RequestError(f"token id {bad[0]} is out of range [0, {vocab_size})", param="prompt")
            return prompts
    raise RequestError("prompt must be a string, a list of strings, a list of token ids or a list of "
                       "non-empty lists of token ids", param="prompt")


def is_token_ids(value) -> bool:
    return isinstance(value, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in value)


def parse_messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages must be a non-empty list", param="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "developer", "user", "assistant", "tool"):
            raise RequestError(f"messages[{i}]: role must be system, developer, user, assistant or tool",
                               param="messages")
        content = m.get("content")
        if content is None and not (m["role"] == "assistant"):
            raise RequestError(f"messages[{i}]: content is required for a {m['role']} message", param="messages")
        if content is not None and not isinstance(content, str) and not (
                isinstance(content, list) and all(isinstance(p, dict) and isinstance(p.get("text", ""), str)
                                                  for p in content)):
            raise RequestError(f"messages[{i}]: content must be a string or a list of text parts", param="messages")
        if any(isinstance(p, dict) and p.get("type") not in ("text", "python", "python_output", None)
               for p in (content if isinstance(content, list) else [])):
            raise RequestError(f"messages[{i}]: only text content parts are supported", param="messages")
    return messages


def check_context(prompt_len: int, max_tokens: int, context: int, chat: bool) -> None:
    if prompt_len + max_tokens > context:
        where = "messages" if chat else "prompt"
        raise RequestError(f"This model's maximum context length is {context} tokens. However, you requested "
                           f"{prompt_len + max_tokens} tokens ({prompt_len} in the {where}, {max_tokens} in the "
                           "completion). Please reduce the length of the prompt or completion.",
                           param="max_tokens" if prompt_len < context else where, code="context_length_exceeded")
