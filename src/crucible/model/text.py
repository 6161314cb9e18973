"""A native tokenizer as a server needs it: prompts (base and chat), token texts and their bytes.

`crucible serve` (crucible.serve.models) and the scripted test model (crucible.testing.scripted)
both answer /tokenize, /detokenize and log-prob requests for crucible's own tokenizer; this is the
one place that does it, below both.
"""

from __future__ import annotations


class NativeText:
    """A crucible tokenizer as the HTTP layer needs it: prompts, /tokenize, token texts and bytes."""

    eos_token, bos_token = "<|assistant_end|>", "<|bos|>"

    def __init__(self, tokenizer):
        from crucible.model.tokenizer import CHAT_TEMPLATE, _byte_decoder

        self.tokenizer = tokenizer
        self.vocab_size = tokenizer.vocab_size
        self.chat_template = CHAT_TEMPLATE
        self._bytes = _byte_decoder()

    def base_prompt(self, text: str) -> list[int]:
        return [self.tokenizer.bos_id] + self.tokenizer.encode(text)

    def chat_prompt(self, messages: list[dict], tools: list) -> list[int]:
        from crucible.model.chat import render_for_completion
        return render_for_completion(self.tokenizer, messages, tools or None)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def token_text(self, token: int) -> str:
        return self.tokenizer.decode([token])

    def token_bytes(self, token: int) -> bytes:
        """The token's own bytes (its text may be half a UTF-8 character, shown as U+FFFD)."""
        if token in self.tokenizer.special_ids:
            return self.token_text(token).encode()
        return bytes(self._bytes[c] for c in self.tokenizer.id_to_token(token))
