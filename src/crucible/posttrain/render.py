"""Examples to token ids and a loss mask, together: 1 on what the model should learn to write.

Native models use crucible's chat format (`crucible.model.chat.render_conversation`): assistant
text, code and the <|assistant_end|> closing each turn are trained; <|bos|>, user and system text,
<|assistant_start|> and tool output (which the engine forces at inference) are not. Messages are
first folded into its user/assistant turns exactly as serving folds them (`chat.fold_messages`):
`tools` become system text, an assistant's tool calls <tool_call> blocks of its turn (trained), a
tool message a <tool_response> in a user turn (masked: the environment wrote it).

Hugging Face models use their own chat template, and the mask is found by rendering prefixes: for
each assistant message i, the template applied to messages[:i] with the generation prompt must be
a token prefix of messages[:i+1], which must be a prefix of the whole conversation; the tokens in
between are that turn's. A template that rewrites earlier turns once later ones exist (dropping
reasoning from past turns, or re-rendering past tool calls, say) fails that check, and rendering
refuses it (`TemplateError`, naming the message and the first differing text) rather than train on
a mask that does not match what the model sees at inference. Tool calls and tool messages go to
the template as they are, and the conversation's `tools` as `apply_chat_template(tools=...)`; the
same prefix method then trains the assistant's tool-call turns and masks tool output, which lies
between turns like user text. Tool-call arguments given as JSON strings are handed over parsed
(transformers' templates expect objects: some would quote a string again).

Base-model text ({"prompt", "completion"}) is <bos> + prompt (masked) + completion + the end token
(trained), the prompt tokenised alone, exactly as the samplers tokenise it.

`show` prints rendered examples with the trained tokens highlighted (terminal colours) and
`show_html` writes the same as an HTML page.

Not covered: multimodal content; crucible's python/python_output content parts on HF templates
(they render for native models only: HF agents call tools through `tool_calls`).
"""

from __future__ import annotations

import html
import json

from crucible.posttrain.data import DataError, Example


class TemplateError(ValueError):
    """The model's chat template is not prefix-stable: turn masks cannot be found by prefixes."""


class NativeRenderer:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.end_id = tokenizer.special_id("assistant_end")
        self.pad_id = tokenizer.bos_id

    def example(self, ex: Example) -> tuple[list[int], list[int]]:
        from crucible.model.chat import fold_messages, render_conversation

        if ex.messages is None:
            prompt, answer = self.prompt(ex), self.tokenizer.encode(ex.completion) + [self.end_id]
            return prompt + answer, [0] * len(prompt) + [1] * len(answer)
        try:
            return render_conversation(self.tokenizer, fold_messages(ex.messages, ex.tools))
        except ValueError as e:
            raise DataError(f"{ex.where}: {e}") from None

    def prompt(self, ex: Example) -> list[int]:
        """What a sampler is given: <bos> + prompt text, or the conversation + <|assistant_start|>."""
        from crucible.model.chat import render_for_completion

        if ex.messages is None:
            return [self.tokenizer.bos_id] + self.tokenizer.encode(ex.prompt)
        try:
            return render_for_completion(self.tokenizer, ex.messages, ex.tools)
        except ValueError as e:
            raise DataError(f"{ex.where}: {e}") from None

    def token_text(self, token: int) -> str:
        return self.tokenizer.decode([token])


class HFRenderer:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.end_id = tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.end_id

    def _template(self, messages: list[dict], generation_prompt: bool, tools: list | None) -> list[int]:
        text = self.tokenizer.apply_chat_template(messages, tools=tools, tokenize=False,
                                                  add_generation_prompt=generation_prompt)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _difference(self, shorter: list[int], longer: list[int]) -> str:
        k = next(j for j, (a, b) in enumerate(zip(shorter, longer + [None] * len(shorter))) if a != b)
        return (f"first difference after {self.tokenizer.decode(shorter[max(0, k - 8):k])!r}: "
                f"{self.tokenizer.decode(shorter[k:k + 8])!r} vs {self.tokenizer.decode(longer[k:k + 8])!r}")

    def example(self, ex: Example) -> tuple[list[int], list[int]]:
        from jinja2 import TemplateError as JinjaError

        if ex.messages is None:
            prompt = self.prompt(ex)
            answer = self.tokenizer(ex.completion, add_special_tokens=False)["input_ids"] + [self.end_id]
            return prompt + answer, [0] * len(prompt) + [1] * len(answer)
        if not getattr(self.tokenizer, "chat_template", None):
            raise DataError(f"{ex.where}: the model's tokenizer has no chat template; use prompt/completion data")
        for i, m in enumerate(ex.messages):
            if not isinstance(m.get("content"), str) and not (m.get("content") is None and m.get("tool_calls")):
                raise DataError(f"{ex.where}: message {i}: content parts (python/python_output) render only "
                                "for native models; HF models call tools through tool_calls")
        messages = _arguments_parsed(ex.messages)
        try:
            return self._masked(ex, messages)
        except JinjaError as e:
            raise DataError(f"{ex.where}: the chat template refused the conversation: {e}") from None

    def _masked(self, ex: Example, messages: list[dict]) -> tuple[list[int], list[int]]:
        full = self._template(messages, False, ex.tools)
        mask = [0] * len(full)
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue   # system, user and tool output stay masked
            before = self._template(messages[:i], True, ex.tools) if i else []
            through = self._template(messages[:i + 1], False, ex.tools)
            what = f"message {i} ({'assistant with tool calls' if m.get('tool_calls') else 'assistant'})"
            if through[:len(before)] != before:
                raise TemplateError(
                    f"{ex.where}: the chat template is not prefix-stable at {what}: rendering the messages "
                    f"before it with the generation prompt is not a prefix of rendering them with it "
                    f"({self._difference(before, through)}); turn masks cannot be found")
            if full[:len(through)] != through:
                raise TemplateError(
                    f"{ex.where}: the chat template is not prefix-stable at {what}: the conversation up to "
                    "it renders differently once later messages follow (an earlier turn or tool call "
                    f"re-rendered: {self._difference(through, full)}); turn masks cannot be found")
            mask[len(before):len(through)] = [1] * (len(through) - len(before))
        return full, mask

    def prompt(self, ex: Example) -> list[int]:
        if ex.messages is not None:
            return self._template(_arguments_parsed(ex.messages), True, ex.tools)
        ids = self.tokenizer(ex.prompt, add_special_tokens=True)["input_ids"]
        bos = self.tokenizer.bos_token_id
        return ids if bos is None or ids[:1] == [bos] else [bos] + ids

    def token_text(self, token: int) -> str:
        return self.tokenizer.decode([token])


def _arguments_parsed(messages: list[dict]) -> list[dict]:
    """Messages whose tool calls' JSON-string arguments are objects (data.py checked they parse)."""
    def parsed(call: dict) -> dict:
        function = call["function"]
        if not isinstance(function.get("arguments"), str):
            return call
        return {**call, "function": {**function, "arguments": json.loads(function["arguments"])}}
    return [{**m, "tool_calls": [parsed(c) for c in m["tool_calls"]]} if m.get("tool_calls") else m
            for m in messages]


def pair_examples(pair) -> tuple[Example, Example]:
    """A preference pair as two examples sharing the prompt: (chosen, rejected)."""
    def with_answer(text: str) -> Example:
        if pair.prompt.messages is not None:
            return Example(pair.where, messages=pair.prompt.messages + [{"role": "assistant", "content": text}],
                           tools=pair.prompt.tools)
        return Example(pair.where, prompt=pair.prompt.prompt, completion=text)
    return with_answer(pair.chosen), with_answer(pair.rejected)


TRAINED, MASKED, RESET = "\033[1;32m", "\033[2m", "\033[0m"


def show(renderer, ids: list[int], mask: list[int], *, color: bool = True) -> str:
    """The rendered tokens, trained ones highlighted (green) and masked ones dim; without colour,
    trained spans are wrapped in [[ ]]."""
    out, current = [], None
    for token, m in zip(ids, mask):
        if m != current:
            if color:
                out.append(TRAINED if m else MASKED)
            elif current is not None or m:
                out.append("[[" if m else "]]")
            current = m
        out.append(renderer.token_text(token))
    if color:
        out.append(RESET)
    elif current:
        out.append("]]")
    return "".join(out)


def show_html(renderer, rendered: list[tuple[str, list[int], list[int]]]) -> str:
    """An HTML page of (title, ids, mask) examples: trained tokens on green, masked ones grey."""
    parts = ["<!doctype html><meta charset=utf-8><title>loss mask</title><style>body{font-family:monospace}"
             "pre{white-space:pre-wrap;border:1px solid #ccc;padding:8px}.t{background:#c8f7c5}"
             ".m{color:#888}</style><p>green: trained tokens; grey: masked (not trained)</p>"]
    for title, ids, mask in rendered:
        spans = "".join(f'<span class="{"t" if m else "m"}">{html.escape(renderer.token_text(t))}</span>'
                        for t, m in zip(ids, mask))
        parts.append(f"<h3>{html.escape(title)}</h3><pre>{spans}</pre>")
    return "\n".join(parts) + "\n"
