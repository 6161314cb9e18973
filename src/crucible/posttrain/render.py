"""Examples to token ids and a loss mask, together: 1 on what the model should learn to write.

Native models use crucible's chat format (`crucible.model.chat.render_conversation`): assistant
text, code and the <|assistant_end|> closing each turn are trained; <|bos|>, user and system text,
<|assistant_start|> and tool output (which the engine forces at inference) are not.

Hugging Face models use their own chat template, and the mask is found by rendering prefixes: for
each assistant message i, the template applied to messages[:i] with the generation prompt must be
a token prefix of messages[:i+1], which must be a prefix of the whole conversation; the tokens in
between are that turn's. A template that rewrites earlier turns once later ones exist (dropping
reasoning from past turns, say) fails that check, and rendering refuses it (`TemplateError`) rather
than train on a mask that does not match what the model sees at inference.

Base-model text ({"prompt", "completion"}) is <bos> + prompt (masked) + completion + the end token
(trained), the prompt tokenised alone, exactly as the samplers tokenise it.

`show` prints rendered examples with the trained tokens highlighted (terminal colours) and
`show_html` writes the same as an HTML page.

Not covered: multimodal content, HF templates with tool-call parts (agent trajectories are
rendered for native models only).
"""

from __future__ import annotations

import html

from crucible.posttrain.data import DataError, Example


class TemplateError(ValueError):
    """The model's chat template is not prefix-stable: turn masks cannot be found by prefixes."""


class NativeRenderer:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.end_id = tokenizer.special_id("assistant_end")
        self.pad_id = tokenizer.bos_id

    def example(self, ex: Example) -> tuple[list[int], list[int]]:
        from crucible.model.chat import render_conversation

        if ex.messages is None:
            prompt, answer = self.prompt(ex), self.tokenizer.encode(ex.completion) + [self.end_id]
            return prompt + answer, [0] * len(prompt) + [1] * len(answer)
        try:
            return render_conversation(self.tokenizer, ex.messages)
        except ValueError as e:
            raise DataError(f"{ex.where}: {e}") from None

    def prompt(self, ex: Example) -> list[int]:
        """What a sampler is given: <bos> + prompt text, or the conversation + <|assistant_start|>."""
        from crucible.model.chat import render_for_completion

        if ex.messages is None:
            return [self.tokenizer.bos_id] + self.tokenizer.encode(ex.prompt)
        try:
            return render_for_completion(self.tokenizer, ex.messages)
        except ValueError as e:
            raise DataError(f"{ex.where}: {e}") from None

    def token_text(self, token: int) -> str:
        return self.tokenizer.decode([token])


class HFRenderer:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.end_id = tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.end_id

    def _template(self, messages: list[dict], generation_prompt: bool) -> list[int]:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def example(self, ex: Example) -> tuple[list[int], list[int]]:
        if ex.messages is None:
            prompt = self.prompt(ex)
            answer = self.tokenizer(ex.completion, add_special_tokens=False)["input_ids"] + [self.end_id]
            return prompt + answer, [0] * len(prompt) + [1] * len(answer)
        if not getattr(self.tokenizer, "chat_template", None):
            raise DataError(f"{ex.where}: the model's tokenizer has no chat template; use prompt/completion data")
        for m in ex.messages:
            if not isinstance(m["content"], str):
                raise DataError(f"{ex.where}: content parts (tool use) render only for native models")
        full = self._template(ex.messages, False)
        mask = [0] * len(full)
        for i, m in enumerate(ex.messages):
            if m["role"] != "assistant":
                continue
            before = self._template(ex.messages[:i], True) if i else []
            through = self._template(ex.messages[:i + 1], False)
            if through[:len(before)] != before or full[:len(through)] != through:
                raise TemplateError(
                    f"{ex.where}: the chat template is not prefix-stable at message {i}: rendering the "
                    "conversation up to it (with the generation prompt) is not a prefix of rendering it "
                    "with the reply, or of the whole conversation; turn masks cannot be found")
            mask[len(before):len(through)] = [1] * (len(through) - len(before))
        return full, mask

    def prompt(self, ex: Example) -> list[int]:
        if ex.messages is not None:
            return self._template(ex.messages, True)
        ids = self.tokenizer(ex.prompt, add_special_tokens=True)["input_ids"]
        bos = self.tokenizer.bos_token_id
        return ids if bos is None or ids[:1] == [bos] else [bos] + ids

    def token_text(self, token: int) -> str:
        return self.tokenizer.decode([token])


def pair_examples(pair) -> tuple[Example, Example]:
    """A preference pair as two examples sharing the prompt: (chosen, rejected)."""
    def with_answer(text: str) -> Example:
        if pair.prompt.messages is not None:
            return Example(pair.where, messages=pair.prompt.messages + [{"role": "assistant", "content": text}])
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
