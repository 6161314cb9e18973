"""The model behind the server: token-level access to a native or hf: checkpoint, one interface.

The HTTP layer needs more than `Backend.complete/chat` (text in, text out): token-id prompts, the
prompt's log-probs (echo), each generated token's log-prob and alternatives, /tokenize, the context
length. `load_served(spec)` gives an object with those: `text` (`NativeText` / `HFText`: prompts,
/tokenize, token texts and bytes, the chat template), `context_length` and `run(job)`:

- `native:DIR` runs every request through `crucible.model.scheduler.Scheduler` (continuous
  batching: concurrent requests share one decode batch);
- `hf:DIR` runs `HFBackend.generate_ids` (transformers' generate, one request at a time under the
  backend's lock); log-probs come from one extra forward pass over prompt + completion, the model's
  own numbers (the sampled tokens' distribution is not kept by generate without a cost per step).

`run(job)` blocks (the HTTP layer calls it from a worker thread) and streams stop-safe text through
`job.on_text(sample, delta)`. Log-probs are of the raw model distribution (before temperature).

Not covered: vllm: (serve it with `vllm serve`) and openai: (a proxy adds nothing) specs; cancelling
an hf: request in flight (the native scheduler drops a cancelled request at its next step).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Callable

from crucible.generate.registry import parse_spec
from crucible.generate.types import BackendError
from crucible.model.scheduler import Request, Result, Sample, top_logprobs
from crucible.model.text import NativeText
from crucible.sanitize import StopStream


@dataclass
class Job:
    prompt: list[int]
    n: int
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False
    logprobs: int | None = None
    prompt_logprobs: int | None = None
    on_text: Callable[[int, str], None] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)

    def sampling(self):
        from crucible.model.engine import SamplingParams
        return SamplingParams(max_tokens=max(1, self.max_tokens), temperature=self.temperature, top_p=self.top_p,
                              top_k=self.top_k, seed=self.seed if self.seed is not None else random.randrange(1 << 63),
                              stop=self.stop, ignore_eos=self.ignore_eos)


def load_served(spec: str):
    kind, target = parse_spec(spec)
    if kind not in ("native", "hf"):
        raise BackendError(f"crucible serve runs native: and hf: checkpoints; serve {kind}: models with their "
                           "own server (vllm serve) or point clients at them directly")
    from pathlib import Path
    if not Path(target).is_dir():
        raise BackendError(f"{spec}: not a directory")
    return NativeServed(target) if kind == "native" else HFServed(target)


class NativeServed:
    def __init__(self, path: str):
        from crucible.generate.native_backend import NativeBackend
        from crucible.model.scheduler import Scheduler

        self.backend = NativeBackend.load(path)
        self.engine = self.backend.engine
        self.text = NativeText(self.engine.tokenizer)
        self.scheduler = Scheduler(self.engine)
        self.context_length = self.engine.model.config.seq_len

    def run(self, job: Job) -> Result:
        streams = [StopStream(job.stop) for _ in range(job.n)]
        shown = [""] * job.n

        def on_token(sample, token, text, forced):
            shown[sample] += text
            delta = streams[sample].feed(shown[sample])
            if delta:
                job.on_text(sample, delta)

        request = Request(job.prompt, job.n, job.sampling(), job.max_tokens, job.logprobs, job.prompt_logprobs,
                          on_token if job.on_text else None, job.cancelled)
        result = self.scheduler.run(request)
        if job.on_text:
            for i, sample in enumerate(result.samples):
                rest = streams[i].feed(sample.completion.text) + streams[i].finish()
                if rest:
                    job.on_text(i, rest)
        return result

    def close(self) -> None:
        self.scheduler.close()


class HFText:
    """An HF tokenizer (and its chat template) as the HTTP layer needs it."""

    def __init__(self, backend):
        self.backend, self.tokenizer = backend, backend.tokenizer
        self.vocab_size = len(self.tokenizer)
        self.eos_token, self.bos_token = self.tokenizer.eos_token, self.tokenizer.bos_token
        self.chat_template = getattr(self.tokenizer, "chat_template", None)

    def base_prompt(self, text: str) -> list[int]:
        return self.backend.base_ids(text)

    def chat_prompt(self, messages: list[dict], tools: list) -> list[int]:
        if not self.chat_template:
            raise BackendError("the model has no chat template; use /v1/completions")
        plain = []
        for m in messages:   # OpenAI's shapes that chat templates do not all take
            m = dict(m, role="system" if m["role"] == "developer" else m["role"])
            if isinstance(m.get("content"), list):
                m["content"] = "".join(p.get("text", "") for p in m["content"])
            elif m.get("content") is None:
                m["content"] = ""
            plain.append(m)
        try:
            text = self.tokenizer.apply_chat_template(plain, tools=tools or None, add_generation_prompt=True,
                                                      tokenize=False)
        except Exception as e:  # noqa: BLE001 - jinja's errors: the template cannot take these messages
            raise BackendError(f"the model's chat template cannot render these messages ({type(e).__name__}: "
                               f"{e})") from None
        return self.encode(text)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def token_text(self, token: int) -> str:
        return self.tokenizer.decode([token])

    def token_bytes(self, token: int) -> bytes:
        return self.token_text(token).encode()


class HFServed:
    def __init__(self, path: str):
        from crucible.generate.hf_backend import HFBackend

        self.backend = HFBackend(path)
        self.text = HFText(self.backend)
        config = self.backend.model.config
        limit = getattr(config, "max_position_embeddings", None) or getattr(config, "seq_len", None)
        self.context_length = int(limit or min(self.text.tokenizer.model_max_length, 1 << 20))

    def run(self, job: Job) -> Result:
        from crucible.generate.types import GenParams
        from crucible.model.engine import Completion

        samples = []
        if job.max_tokens > 0:
            params = GenParams(max_tokens=job.max_tokens, temperature=job.temperature, top_p=job.top_p,
                               top_k=job.top_k, seed=job.seed, stop=job.stop)
            gens = self.backend.generate_ids([job.prompt] * job.n, params, job.on_text)
            samples = [Sample(Completion(g.token_ids, g.text, [0] * len(g.token_ids), g.finish_reason)) for g in gens]
        else:
            samples = [Sample(Completion([], "", [], "length")) for _ in range(job.n)]
        result = Result(samples)
        if job.logprobs is not None or job.prompt_logprobs is not None:
            for i, sample in enumerate(samples):
                lp, top = self.score(job.prompt + sample.completion.ids, max(job.logprobs or 0, job.prompt_logprobs or 0))
                if job.logprobs is not None:
                    sample.logprobs = lp[len(job.prompt):]
                    sample.top = [t[:job.logprobs] for t in top[len(job.prompt):]]
                if i == 0 and job.prompt_logprobs is not None:
                    result.prompt_logprobs = [None] + lp[1:len(job.prompt)]
                    result.prompt_top = [[]] + [t[:job.prompt_logprobs] for t in top[1:len(job.prompt)]]
        return result

    def score(self, ids: list[int], k: int) -> tuple[list[float | None], list[list[tuple[int, float]]]]:
        """Each token's log-prob given the ones before it (None for the first), and the top k there."""
        torch = self.backend.torch
        with self.backend.lock, torch.inference_mode():
            logits = self.backend.model(torch.tensor([ids], device=self.backend.device)).logits[0].float()
        scores = torch.log_softmax(logits[:-1], dim=-1)
        chosen = scores.gather(1, torch.tensor(ids[1:], device=scores.device)[:, None])[:, 0].tolist()
        return [None] + chosen, [[]] + top_logprobs(scores, k)

    def close(self) -> None:
        self.backend.close()
