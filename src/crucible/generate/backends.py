"""Sampling backends behind one interface, chosen by a model spec string.

    native:DIR                crucible's own GPT and KV-cache engine (crucible.model)
    hf:DIR                    transformers AutoModelForCausalLM + generate
    vllm:DIR                  vLLM (optional, GPU; imported only when asked for)
    openai:MODEL@BASE_URL     any OpenAI-compatible server (vLLM, llama.cpp, `crucible serve`, ...)

Every backend does two things: `complete(prompt)` continues raw text (base-model prompting) and
`chat(messages)` answers a conversation through the model's chat template. Both return `n`
`Generation`s, cut at the stop sequences, and can stream text through `on_text(index, delta)`.
`concurrency` says how many calls may usefully be in flight at once (1 for in-process models,
which serialize on a lock; many for a remote server).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Protocol

from crucible.generate.sanitize import find_stop

OnText = Callable[[int, str], None]  # (choice index, newly generated text)


@dataclass(frozen=True)
class GenParams:
    max_tokens: int = 512
    temperature: float = 0.0         # 0: greedy
    top_p: float = 1.0
    top_k: int = 0                   # 0: off
    seed: int | None = 0
    stop: tuple[str, ...] = ()

    def check(self) -> str | None:
        """What is wrong with these parameters, or None."""
        if self.max_tokens < 1:
            return f"max_tokens must be >= 1, got {self.max_tokens}"
        if self.temperature < 0:
            return f"temperature must be >= 0, got {self.temperature}"
        if not 0 < self.top_p <= 1:
            return f"top_p must be in (0, 1], got {self.top_p}"
        if self.top_k < 0:
            return f"top_k must be >= 0, got {self.top_k}"
        return None


@dataclass
class Generation:
    text: str
    finish_reason: str = "stop"      # "stop" (stop sequence or end of text) or "length"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    token_ids: list[int] | None = None   # the generated tokens, where the backend knows them (hf)


class Backend(Protocol):
    spec: str
    concurrency: int

    def complete(self, prompt: str, n: int, params: GenParams, on_text: OnText | None = None) -> list[Generation]:
        """n continuations of `prompt`."""

    def chat(self, messages: list[dict], n: int, params: GenParams, on_text: OnText | None = None) -> list[Generation]:
        """n assistant replies to `messages` ([{"role", "content"}, ...])."""

    def close(self) -> None:
        ...


class BackendError(RuntimeError):
    """The backend cannot be loaded or used (bad spec, missing files, missing optional package)."""


@dataclass
class StopStream:
    """Follows one growing completion: what is safe to show so far, and whether a stop was hit.

    Text that could still turn out to be the start of a stop sequence is held back, so a
    streaming client never sees part of a stop sequence.
    """
    stops: tuple[str, ...]
    shown: int = 0
    stopped: bool = False
    text: str = ""

    def feed(self, text: str) -> str:
        """Give the whole completion so far; returns the new text safe to show."""
        if self.stopped:
            return ""
        cut = find_stop(text, self.stops)
        if cut >= 0:
            self.stopped, end, self.text = True, cut, text[:cut]
        else:
            self.text = text
            end = len(text) - held_back(text, self.stops)
            if text.endswith("\ufffd"):  # an incomplete UTF-8 character: wait for the rest
                end = min(end, len(text) - 1)
        delta = text[self.shown:end] if end > self.shown else ""
        self.shown = max(self.shown, end)
        return delta

    def finish(self) -> str:
        """The rest, once generation has ended without a stop sequence."""
        delta = self.text[self.shown:]
        self.shown = len(self.text)
        return delta


def held_back(text: str, stops) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of a stop sequence."""
    best = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:k]):
                best = k
                break
    return best


def parse_spec(spec: str) -> tuple[str, str]:
    kind, sep, target = spec.partition(":")
    if not sep or kind not in ("native", "hf", "vllm", "openai") or not target:
        raise BackendError(f"bad model spec {spec!r}: expected native:DIR, hf:DIR, vllm:DIR or "
                           "openai:MODEL@BASE_URL")
    return kind, target


def parse_openai_target(target: str) -> tuple[str, str | None]:
    """MODEL@BASE_URL (the URL may be omitted: OPENAI_BASE_URL or api.openai.com)."""
    m = re.match(r"^(.+?)@(https?://\S+)$", target)
    if m:
        return m.group(1), m.group(2).rstrip("/")
    if "@" in target:
        raise BackendError(f"bad openai spec {target!r}: expected MODEL@http(s)://HOST[:PORT]/v1")
    return target, None


def load_backend(spec: str, **options) -> Backend:
    """Build the backend a spec names; heavy libraries are imported here, not at module import."""
    kind, target = parse_spec(spec)
    if kind == "openai":
        from crucible.generate.openai_client import OpenAIBackend
        model, base_url = parse_openai_target(target)
        return OpenAIBackend(model, base_url, spec=spec, **options)
    from pathlib import Path
    if not Path(target).is_dir():
        raise BackendError(f"{spec}: {target} is not a directory")
    if kind == "hf":
        from crucible.generate.hf_backend import HFBackend
        return HFBackend(target, spec=spec, **options)
    if kind == "native":
        from crucible.generate.native_backend import NativeBackend
        return NativeBackend(target, spec=spec, **options)
    from crucible.generate.vllm_backend import VLLMBackend
    return VLLMBackend(target, spec=spec, **options)

