"""Continuous batching over the native engine: requests join and leave one running decode batch.

Why: `Engine.generate_batch` decodes a fixed batch to the end, so a server calling it serves one
request at a time and a 4-token request waits behind a 16 x 4000-token one. Here one thread owns the
model and runs a loop; between two decode steps it admits every waiting request (each prompt is
prefilled alone, its keys/values copied into its n rows of the batch cache) and drops finished rows.

The batch cache is the engine's `KVCache` with every row right-aligned on one write slot `pos` and
`pad[b]` empty slots in front (gpt.py masks them and gives each row its own RoPE positions). When a
request joins, or a quarter of the rows have finished, the cache is rebuilt: kept rows are copied,
shifted so the longest sequence starts at slot 0, and new prompts are placed to end at `pos`. Its
capacity is exactly what the rows still need (pos + the largest remaining max_tokens), so it never
grows between rebuilds. A rebuild copies the cache once (tens of MB for the tiny models); decode steps
copy nothing.

Per-request sampling: each request has its own SamplingParams and generator (seeded with its seed),
which draws n numbers every step, one per sample, finished or not; so what a request gets does not
depend on which other requests share its batch. Its live rows are sampled in one call. Log-probs are the model's raw distribution (log-softmax of
the float32 logits, before temperature / top-k / top-p), as vLLM's default.

What the scheduler needs from the engine, and nothing else: `engine.model` (`hidden`, `logits`,
`decoding()`, `config`), `engine.tokenizer`, `engine.cache_dtype` / `autocast`, and the hooks
`engine.append_token` (stops, max_tokens, streamed text) and `engine.completion`. A future decode
rework keeps those and this file keeps working.

Not covered: tool use (the engine's sandboxed <|python_start|> runs; a row here is never forced),
paged attention (a rebuild is a copy), prefix sharing across requests, a KV-cache memory budget
(the server bounds a request by the model's context and n).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

import torch

from crucible.model.engine import Completion, Engine, Row, SamplingParams, sample_next
from crucible.model.gpt import KVCache

@dataclass
class Request:
    """One prompt, n samples. `max_tokens` may be 0 (score the prompt only); `params.max_tokens`
    is then ignored. `logprobs`: how many alternatives to return per generated token (None: no
    log-probs; 0: the chosen token's only). `prompt_logprobs`: the same for the prompt's tokens."""
    prompt: list[int]
    n: int
    params: SamplingParams
    max_tokens: int
    logprobs: int | None = None
    prompt_logprobs: int | None = None
    on_token: Callable | None = None        # (sample, token_id, text, forced), from the scheduler thread
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass
class Sample:
    completion: Completion
    logprobs: list[float] = field(default_factory=list)                    # per generated token
    top: list[list[tuple[int, float]]] = field(default_factory=list)       # alternatives per token


@dataclass
class Result:
    samples: list[Sample]
    prompt_logprobs: list[float | None] | None = None            # first token: None
    prompt_top: list[list[tuple[int, float]]] | None = None


class _Job:
    def __init__(self, request: Request):
        self.request = request
        self.rows = [Row() for _ in range(request.n)]
        self.samples = [Sample(None) for _ in range(request.n)]   # completion filled at the end
        self.generator = torch.Generator().manual_seed(request.params.seed % (1 << 64))
        self.prefill: KVCache | None = None        # the prompt's keys/values until it joins the batch
        self.prompt_logprobs = self.prompt_top = None
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()


def top_logprobs(logprobs: torch.Tensor, k: int) -> list[list[tuple[int, float]]]:
    """The k most likely tokens per row of log-probs [T, V], as (id, log-prob) pairs."""
    if k <= 0:
        return [[] for _ in range(logprobs.size(0))]
    values, ids = torch.topk(logprobs, k, dim=-1)
    return [list(zip(i, v)) for i, v in zip(ids.tolist(), values.tolist())]


class Scheduler:
    """Owns the engine's model on one thread; `run(request)` blocks until the request is done."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.model = engine.model
        self.device = engine.device
        self._waiting: list[_Job] = []
        self._wake = threading.Condition()
        self._closed = False
        self._rows: list[tuple[_Job, int]] = []   # batch row -> (job, sample index)
        self._cache: KVCache | None = None
        self._last: list[int] = []                # the token each row feeds next
        self._pending: dict = {}                  # (job, sample) -> first token, until the row joins
        self.stats = {"steps": 0, "rebuilds": 0, "max_batch": 0}
        self._thread = threading.Thread(target=self._loop, name="crucible-scheduler", daemon=True)
        self._thread.start()

    # -- public ----------------------------------------------------------------------------------
    def run(self, request: Request) -> Result:
        if request.n < 1 or not request.prompt:
            raise ValueError("a request needs n >= 1 and at least one prompt token")
        job = _Job(request)
        with self._wake:
            if self._closed:
                raise RuntimeError("the scheduler is closed")
            self._waiting.append(job)
            self._wake.notify()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=10)

    # -- the loop --------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._waiting and not self._rows and not self._closed:
                    self._wake.wait()
                if self._closed:
                    for job in self._waiting + [j for j, _ in self._rows]:
                        job.error = RuntimeError("the server is shutting down")
                        job.done.set()
                    return
                admitted, self._waiting = self._waiting, []
            try:
                with torch.inference_mode(), self.engine.autocast(), self.model.decoding():
                    self._step(admitted)
            except Exception as e:  # noqa: BLE001 - fail the requests in flight, keep serving
                for job in {id(j): j for j in admitted + [j for j, _ in self._rows]}.values():
                    job.error = e
                    job.done.set()
                self._rows, self._cache, self._last = [], None, []

    def _step(self, admitted: list[_Job]) -> None:
        """Admit the new requests (prefill, first token), rebuild the cache if needed, decode one token."""
        fresh = []
        for job in admitted:
            logits = self._prefill(job)
            if job.request.max_tokens == 0 or job.request.cancelled.is_set():
                self._finish(job, "length" if job.request.max_tokens == 0 else "abort")
                continue
            self._take([(job, j) for j in range(job.request.n)], logits.expand(job.request.n, -1))
            if all(row.finish is not None for row in job.rows):
                self._complete(job)
            else:
                fresh.append(job)
        live = [b for b, (job, j) in enumerate(self._rows) if job.rows[j].finish is None]
        if fresh or 4 * (len(self._rows) - len(live)) >= max(1, len(self._rows)):
            self._rebuild(live, fresh)
        if not self._rows:
            return
        idx = torch.tensor(self._last, device=self.device)[:, None]
        logits = self.model.logits(self.model.hidden(idx, kv_cache=self._cache)[:, -1]).float()
        self._take(self._rows, logits)
        self.stats["steps"] += 1
        self.stats["max_batch"] = max(self.stats["max_batch"], len(self._rows))

    def _take(self, rows: list[tuple[_Job, int]], logits: torch.Tensor) -> None:
        """Sample each live row's next token from its logits [len(rows), V] and record it; finished
        rows keep feeding their last token until the next rebuild drops them."""
        logprobs = None
        if any(job.request.logprobs is not None for job, _ in rows):
            logprobs = torch.log_softmax(logits, dim=-1)
        greedy = [b for b, (job, _) in enumerate(rows) if job.request.params.temperature == 0]
        chosen = dict(zip(greedy, logits[greedy].argmax(-1).tolist())) if greedy else {}
        by_job: dict[int, list[int]] = {}
        for b, (job, j) in enumerate(rows):
            if job.request.params.temperature != 0:
                by_job.setdefault(id(job), []).append(b)
        for batch_rows in by_job.values():   # one call per request, its n draws whatever is live
            job = rows[batch_rows[0]][0]
            uniform = torch.rand(job.request.n, 1, generator=job.generator)
            samples = [j for _, j in (rows[b] for b in batch_rows)]
            picked = sample_next(logits[batch_rows], job.request.params, None, uniform[samples]).tolist()
            chosen.update(zip(batch_rows, picked))
        done = {}
        for b, (job, j) in enumerate(rows):
            row, request = job.rows[j], job.request
            if row.finish is not None:
                chosen[b] = row.ids[-1] if row.ids else 0
                continue
            if request.cancelled.is_set():
                row.finish = "abort"
                chosen[b] = row.ids[-1] if row.ids else 0
            else:
                token = chosen[b]
                if request.logprobs is not None:
                    job.samples[j].logprobs.append(float(logprobs[b, token]))
                    job.samples[j].top.extend(top_logprobs(logprobs[b:b + 1], request.logprobs))
                self.engine.append_token(row, j, token, request.params, request.on_token)
                if row.finish is None and len(row.ids) >= request.max_tokens:
                    row.finish = "length"
            if all(r.finish is not None for r in job.rows):
                done[id(job)] = job
        if rows is self._rows:
            self._last = [chosen[b] for b in range(len(rows))]
        else:   # admitted rows: their first token is fed by the next step
            for b, (job, j) in enumerate(rows):
                self._pending[(id(job), j)] = chosen[b]
        for job in done.values():
            if rows is self._rows:
                self._complete(job)

    # -- admission -------------------------------------------------------------------------------
    def _prefill(self, job: _Job) -> torch.Tensor:
        """Prefill one prompt alone (its cache kept on the job for _rebuild); its last logits [1, V]."""
        request, model = job.request, self.model
        single = KVCache(model.config, 1, len(request.prompt), device=self.device, dtype=self.engine.cache_dtype)
        h = model.hidden(torch.tensor([request.prompt], device=self.device), kv_cache=single)
        job.prefill = single
        if request.prompt_logprobs is not None:
            scores = torch.log_softmax(model.logits(h[0, :-1]).float(), dim=-1)
            targets = torch.tensor(request.prompt[1:], device=self.device)
            job.prompt_logprobs = [None] + scores.gather(1, targets[:, None])[:, 0].tolist()
            job.prompt_top = [[]] + top_logprobs(scores, request.prompt_logprobs)
        return model.logits(h[:, -1]).float()

    def _finish(self, job: _Job, reason: str) -> None:
        """A request that generates nothing (max_tokens 0: scoring only, or cancelled) ends at prefill."""
        for row in job.rows:
            row.finish = reason
        self._complete(job)

    def _complete(self, job: _Job) -> None:
        for sample, row in zip(job.samples, job.rows):
            sample.completion = self.engine.completion(row)
            if row.finish == "abort":
                sample.completion.finish_reason = "abort"
        job.result = Result(job.samples, job.prompt_logprobs, job.prompt_top)
        job.prefill = None
        job.done.set()

    def _rebuild(self, keep: list[int], new: list[_Job]) -> None:
        """The batch cache with rows `keep` (batch indices, unfinished) and the n rows of each new job,
        right-aligned so that every row writes slot `pos` next (see the module docstring)."""
        cfg, old = self.model.config, self._cache
        pos = old.pos if old is not None else 0
        old_pad = old.pad.tolist() if old is not None and old.pad is not None else [0] * len(self._rows)
        lo = min((old_pad[b] for b in keep), default=pos)             # first slot a kept row uses
        used = pos - lo
        end = max([used] + [len(job.request.prompt) for job in new])  # the new write slot
        rows = [self._rows[b] for b in keep] + [(job, j) for job in new for j in range(job.request.n)]
        if not rows:
            self._rows, self._cache, self._last = [], None, []
            return
        remaining = [job.request.max_tokens - len(job.rows[j].ids) + 1 for job, j in rows]
        pad = [old_pad[b] - lo + end - used for b in keep]
        pad += [end - len(job.request.prompt) for job in new for _ in range(job.request.n)]
        cache = KVCache(cfg, len(rows), end + max(remaining), device=self.device, dtype=self.engine.cache_dtype,
                        pad=torch.tensor(pad, device=self.device) if any(pad) else None)
        if keep:
            index = torch.tensor(keep, device=self.device)
            for layer in range(cfg.n_layer):
                cache.k[layer][:len(keep), :, end - used:end] = old.k[layer][:, :, lo:pos].index_select(0, index)
                cache.v[layer][:len(keep), :, end - used:end] = old.v[layer][:, :, lo:pos].index_select(0, index)
        b = len(keep)
        for job in new:
            n, length = job.request.n, len(job.request.prompt)
            for layer in range(cfg.n_layer):   # one prefill broadcast into the request's n rows
                cache.k[layer][b:b + n, :, end - length:end] = job.prefill.k[layer]
                cache.v[layer][b:b + n, :, end - length:end] = job.prefill.v[layer]
            job.prefill = None
            b += n
        cache.pos = end
        self._last = [self._last[b] for b in keep] + [self._pending.pop((id(job), j)) for job, j in rows[len(keep):]]
        self._rows, self._cache = rows, cache
        self.stats["rebuilds"] += 1
