"""What every sampling backend is: its parameters, its results, its errors and its interface
(plus the two helpers the in-process backends share: `model_type`, `small_on_cpu`).

The backends (native, hf, vllm, openai) import this module and nothing of each other;
`crucible.generate.registry` builds one from a model spec string. Every backend does two things: `complete(prompt)` continues raw text (base-model prompting) and
`chat(messages)` answers a conversation through the model's chat template. Both return `n`
`Generation`s, cut before the first stop sequence (`crucible.sanitize.truncate_at_stop`), and can stream text through `on_text(index, delta)`.
`concurrency` says how many calls may usefully be in flight at once (1 for in-process models,
which serialize on a lock; many for a remote server).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

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

    # Optional: `complete_many(prompts, params) -> list[Generation]`, one sample per prompt decoded
    # as one batch (native, hf); greedy evaluation uses it when a backend has it.


class BackendError(RuntimeError):
    """The backend cannot be loaded or used (bad spec, missing files, missing optional package)."""


def model_type(path: str) -> str | None:
    """`model_type` of a checkpoint's config.json (None when unreadable): the hf and vllm backends
    trust remote code only for crucible's own ("crucible_gpt"), whose code is ours."""
    import json
    from pathlib import Path
    try:
        return json.loads((Path(path) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError):
        return None


def small_on_cpu(model, device: str, limit: int = 20_000_000) -> None:
    """One intra-op thread for a small model on CPU: its matrices are too small for threads to pay,
    and on a loaded machine OpenMP threads spin against each other (measured on the 2-core lab box
    under load: 64 tokens of the tiny test model took 13.5 s with 2 threads, 0.45 s with 1)."""
    import torch
    if str(device).startswith("cpu") and sum(p.numel() for p in model.parameters()) < limit:
        torch.set_num_threads(1)
