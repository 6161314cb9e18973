"""`native:DIR`: crucible's GPT sampled by its KV-cache `Engine` (crucible.model.engine).

A base prompt is `<|bos|>` + the prompt's tokens (as documents were seen in pretraining); a chat
is rendered by `crucible.model.chat.render_for_completion` (ending in <|assistant_start|>) and
the reply ends at <|assistant_end|>. The n samples share one prefill; greedy evaluation batches several tasks into one engine call
(`complete_many`). Tool use (the engine running
<|python_start|> code in the sandbox) is off by default: an evaluation measures the code the model
writes, not what it can find out by running code; pass tools=True to turn it on.

`NativeBackend(engine)` samples a model already in memory (a policy being trained, evaluated without
saving it); `NativeBackend.load(DIR)` is what `native:DIR` builds.
"""

from __future__ import annotations

import random
import threading

from crucible.generate.types import BackendError, GenParams, Generation, OnText, small_on_cpu
from crucible.sanitize import StopStream


class NativeBackend:
    concurrency = 1

    def __init__(self, engine, *, spec: str = "native:<in memory>"):
        self.spec = spec
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self.lock = threading.Lock()

    @classmethod
    def load(cls, path: str, *, spec: str = "", device: str | None = None, tools: bool = False) -> NativeBackend:
        """The backend of a checkpoint directory (BackendError if it is not one)."""
        import torch

        from crucible.model.engine import Engine

        spec = spec or f"native:{path}"
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            engine = Engine.load(path, device=device, tools=tools)
        except (FileNotFoundError, ValueError, KeyError) as e:
            raise BackendError(f"{spec}: cannot load a crucible checkpoint: {e}") from None
        small_on_cpu(engine.model, device)
        return cls(engine, spec=spec)

    def complete(self, prompt: str, n: int, params: GenParams, on_text: OnText | None = None) -> list[Generation]:
        return self._generate([self.tokenizer.bos_id] + self.tokenizer.encode(prompt), n, params, on_text)

    def chat(self, messages: list[dict], n: int, params: GenParams, on_text: OnText | None = None) -> list[Generation]:
        from crucible.model.chat import render_for_completion
        try:
            ids = render_for_completion(self.tokenizer, messages)
        except ValueError as e:
            raise BackendError(f"{self.spec}: {e}") from None
        return self._generate(ids, n, params, on_text)

    def complete_many(self, prompts: list[str], params: GenParams) -> list[Generation]:
        """One sample for each prompt, all decoded as one batch (sampling uses this when greedy)."""
        ids = [[self.tokenizer.bos_id] + self.tokenizer.encode(p) for p in prompts]
        with self.lock:
            batches = self.engine.generate_batch(ids, 1, self._sampling(params))
        return [Generation(c.text, c.finish_reason, len(i), len(c.ids)) for i, (c,) in zip(ids, batches)]

    def _sampling(self, params: GenParams):
        from crucible.model.engine import SamplingParams
        return SamplingParams(max_tokens=params.max_tokens, temperature=params.temperature, top_p=params.top_p,
                              top_k=params.top_k, stop=tuple(params.stop),
                              seed=params.seed if params.seed is not None else random.randrange(1 << 31))

    def _generate(self, ids: list[int], n: int, params: GenParams, on_text: OnText | None) -> list[Generation]:
        sampling = self._sampling(params)
        streams = [StopStream(tuple(params.stop)) for _ in range(n)]
        shown = [""] * n

        def on_token(sample, token_id, text, forced):
            # The engine cuts at stops; StopStream also holds back what may be the start of one.
            shown[sample] += text
            delta = streams[sample].feed(shown[sample])
            if delta:
                on_text(sample, delta)

        with self.lock:
            completions = self.engine.generate(ids, n, sampling, on_token=on_token if on_text else None)
        gens = []
        for i, c in enumerate(completions):
            if on_text:
                rest = streams[i].feed(c.text) + streams[i].finish()
                if rest:
                    on_text(i, rest)
            gens.append(Generation(c.text, c.finish_reason, len(ids), len(c.ids)))
        return gens

    def close(self) -> None:
        self.engine = None
