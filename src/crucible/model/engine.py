"""Sampling from the native GPT with a KV cache: batched, prefix-shared, with tool use.

How a call runs (`generate_batch(prompts, n, params)`):
1. each prompt is prefilled once (batch 1); its keys/values are then *copied* into the n rows of
   the batch cache that sample from it (n samples cost one prefill, not n). The cache records
   that a prompt's slots are the same in its n rows (`KVCache.shared`, `.group`), and decoding
   attention reads them once per step for all n (`gpt.shared_prefix_attention`, CPU; dropped
   when compaction breaks the groups of several prompts up);
2. prompts of different lengths are right-aligned in the cache (`KVCache.pad`), so every row writes
   the same slot at every step and the whole batch decodes in lockstep, one forward per token.
   Prompts are sorted by length and split into batches whose cache fits `cache_bytes`;
3. a row stops at <|assistant_end|> or <|bos|> (unless `ignore_eos`), at a stop string, or after
   `max_tokens` tokens; finished rows are dropped from the batch (the cache is compacted) once they
   are a quarter of it;
4. tool use: when a row emits <|python_start|> code <|python_end|>, the code runs in crucible's
   sandbox (`crucible.languages.run_program`, a bubblewrap jail with CPU/memory/process limits) and
   <|output_start|> result <|output_end|> is forced into that row, one token per step like sampled
   ones (nanochat's scheme: no row ever falls out of lockstep). Forced tokens are marked in
   `Completion.forced_mask`, so training can mask them out of the loss.

Sampling: temperature 0 is greedy; otherwise top-k, then top-p (nucleus), then a draw from a
`torch.Generator` seeded with `params.seed`: the same call gives the same completions. Text is
decoded per step only when something needs it (stop strings, streaming); otherwise once at the end.

Streaming: `on_token(sample, token_id, text, forced)` is called for every token of every sample as
soon as it exists; `text` is the new decoded text (held back while a multi-byte character is
incomplete). `sample` is the index within the returned list (`generate`), or prompt_index * n +
sample_index (`generate_batch`).

Decode modes (`decode=`): "dynamic" (the cache read through slices that grow by one slot per step;
finished rows compacted away; the CPU default), "static" (fixed shapes: `decode_graph.py`; no
compaction, finished rows ride along) and "graph" (static, replayed as a CUDA graph: one launch
per step instead of hundreds; the CUDA default). "auto" picks by device.

Continuous batching across requests (a request joining a running batch) is
`crucible.model.scheduler`, which uses `append_token` / `completion` below and the model's KV cache.

Not covered: paged attention, speculative decoding, per-sample sampling parameters.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable

import torch

from crucible.model.gpt import GPT, KVCache, checkpoint_config, checkpoint_dir

MAX_TOOL_OUTPUT_CHARS = 2000
DECODE_MODES = ("auto", "dynamic", "static", "graph")


@dataclass
class SamplingParams:
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int = 0
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False     # keep going past <|assistant_end|> / <|bos|> (benchmarks)
    logprobs: bool = False       # record each sampled token's log-probability (RL: sampler vs trainer)

    def __post_init__(self):
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if isinstance(self.stop, str):
            self.stop = (self.stop,)
        self.stop = tuple(s for s in self.stop if s)


@dataclass
class Completion:
    ids: list[int]               # generated tokens, forced ones and the final stop token included
    text: str                    # decoded ids, cut before a stop string; the final stop token omitted
    forced_mask: list[int]       # 1 where the token was forced (tool output), else 0
    finish_reason: str           # "stop" | "length"
    logprobs: list[float] = field(default_factory=list)   # with params.logprobs: per token (0 if forced)


@dataclass
class Row:
    """One sample being generated."""
    ids: list[int] = field(default_factory=list)
    forced: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    queue: list[int] = field(default_factory=list)   # tokens still to force
    text: str = ""                                    # decoded so far (cached for stop checks)
    streamed: int = 0                                 # chars already given to on_token
    finish: str | None = None
    cut: int | None = None                            # text length to keep (stop string)


def sample_next(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None,
                uniform: torch.Tensor | None = None) -> torch.Tensor:
    """Next token per row from float logits [B, V]; `uniform` [B, 1] in [0, 1): the draws to use
    instead of the generator's (the scheduler draws them per request)."""
    if params.temperature == 0:
        return logits.argmax(-1)
    if params.temperature != 1.0:
        logits = logits / params.temperature
    if params.top_k and params.top_k < logits.size(-1):
        kth = torch.topk(logits, params.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if params.top_p < 1.0:
        ordered, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(ordered, dim=-1)
        drop = probs.cumsum(-1) - probs > params.top_p   # keep the smallest prefix reaching top_p
        ordered = ordered.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, ordered)
    probs = torch.softmax(logits, dim=-1)
    # Inverse-CDF draw: one uniform number per row (torch.multinomial and the exponential race draw
    # one per vocabulary entry, 10x slower on CPU). side="right" never lands on a zero-probability token.
    cdf = probs.cumsum(-1)
    if uniform is None:
        uniform = torch.rand(cdf.size(0), 1, generator=generator, device=cdf.device, dtype=cdf.dtype)
    u = uniform.to(cdf.device, cdf.dtype) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).clamp_(max=cdf.size(-1) - 1).squeeze(-1)


def format_tool_result(outcome, limit: int = MAX_TOOL_OUTPUT_CHARS) -> str:
    """What the model sees after running its code: stdout, then the error if there was one."""
    text = outcome.stdout
    if outcome.status != "ok":
        lines = outcome.stderr.strip().splitlines()
        if outcome.status == "runtime_error" and lines:
            error = lines[-1]
        else:
            error = f"[{outcome.status}: {outcome.detail or (lines[-1] if lines else '')}]"
        text = text + ("" if not text or text.endswith("\n") else "\n") + error
    if len(text) > limit:
        text = text[:limit] + "\n[truncated]"
    return text


class Engine:
    def __init__(self, model: GPT, tokenizer, *, tools: bool = True, tool_limits=None, share_prefill: bool = True,
                 unsafe_tools: bool = False, cache_bytes: int | None = None, decode: str = "auto"):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.tools = tools
        self.share_prefill = share_prefill   # False: prefill the prompt once per sample (for comparison)
        self.unsafe_tools = unsafe_tools     # run tool code without bubblewrap (rlimits still apply)
        if tool_limits is None:
            from crucible.sandbox import Limits
            tool_limits = Limits(timeout_s=5.0, memory_mb=512, output_bytes=64 * 1024)
        self.tool_limits = tool_limits
        self.param = next(model.parameters())
        self.device = self.param.device
        on_gpu = self.device.type == "cuda"
        self.cache_dtype = torch.bfloat16 if on_gpu else self.param.dtype
        self.autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if on_gpu else nullcontext
        sid = tokenizer.special_id
        self.stop_ids = {sid("assistant_end"), tokenizer.bos_id}
        self.python_start, self.python_end = sid("python_start"), sid("python_end")
        self.output_start, self.output_end = sid("output_start"), sid("output_end")
        self.cache_bytes = cache_bytes   # KV-cache budget per decoding batch; None: 2 GiB CPU, half of free GPU
        if decode == "auto":
            decode = "graph" if on_gpu else "dynamic"
        if decode not in DECODE_MODES or (decode == "graph" and not on_gpu):
            raise ValueError(f"decode must be one of {', '.join(DECODE_MODES)} ('graph' on CUDA only), got {decode!r}")
        self.decode = decode
        self.stats: dict = {}

    @classmethod
    def load(cls, dir, *, device=None, **kwargs) -> Engine:
        """An engine over a checkpoint directory (model.safetensors + tokenizer.json); NotACheckpoint if not."""
        from crucible.model.tokenizer import FILE_NAME, Tokenizer
        dir = checkpoint_dir(dir)
        checkpoint_config(dir, also=(FILE_NAME,))
        return cls(GPT.from_pretrained(dir, device=device), Tokenizer.load(dir), **kwargs)

    # -- public API ------------------------------------------------------------------------------
    def generate(self, prompt_ids: list[int], n: int, params: SamplingParams | None = None,
                 on_token: Callable | None = None) -> list[Completion]:
        return self.generate_batch([prompt_ids], n, params, on_token=on_token)[0]

    def generate_batch(self, prompts: list[list[int]], n: int, params: SamplingParams | None = None,
                       on_token: Callable | None = None) -> list[list[Completion]]:
        params = params or SamplingParams()
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if not prompts:
            return []
        if any(len(p) == 0 for p in prompts):
            raise ValueError("every prompt needs at least one token (start base-model prompts with <|bos|>)")
        results: list[list[Completion] | None] = [None] * len(prompts)
        self.stats = {}
        for chunk in self._chunks(prompts, n, params.max_tokens):
            stream = None
            if on_token is not None:   # chunk-local sample index -> prompt_index * n + sample_index
                def stream(r, *rest, chunk=chunk):
                    on_token(chunk[r // n] * n + r % n, *rest)
            with torch.inference_mode(), self.autocast(), self.model.decoding():
                rows, stats = self._run([prompts[i] for i in chunk], n, params, stream)
            for k, i in enumerate(chunk):
                results[i] = [self._completion(rows[k * n + j]) for j in range(n)]
            for key, value in stats.items():
                self.stats[key] = self.stats.get(key, 0) + value
        return results

    def _chunks(self, prompts: list[list[int]], n: int, max_tokens: int) -> list[list[int]]:
        """Prompt indices in decoding batches whose KV cache fits the budget; prompts of similar
        length go together (less padding). A prompt's n samples are never split."""
        cfg = self.model.config
        budget = self.cache_bytes
        if budget is None:
            budget = torch.cuda.mem_get_info(self.device)[0] // 2 if self.device.type == "cuda" else 2 << 30
        slot_bytes = 2 * cfg.n_layer * cfg.n_kv_head * cfg.head_dim * torch.finfo(self.cache_dtype).bits // 8
        chunks, current = [], []
        for i in sorted(range(len(prompts)), key=lambda i: len(prompts[i])):
            longest = len(prompts[i]) + max_tokens   # sorted: the newest prompt is the longest
            if current and (len(current) + 1) * n * longest * slot_bytes > budget:
                chunks.append(current)
                current = []
            current.append(i)
        return chunks + [current]

    # -- the loop --------------------------------------------------------------------------------
    def _prefill(self, prompts: list[list[int]], n: int, max_len: int) -> tuple[KVCache, torch.Tensor]:
        """The batch cache (prompt i in rows i*n .. i*n+n-1, right-aligned) and each row's last logits."""
        model, cfg = self.model, self.model.config
        longest = max(len(p) for p in prompts)
        pad = torch.tensor([longest - len(p) for p in prompts for _ in range(n)], device=self.device)
        cache = KVCache(cfg, len(prompts) * n, max_len, device=self.device, dtype=self.cache_dtype,
                        pad=pad if bool(pad.any()) else None)
        last = []
        for i, prompt in enumerate(prompts):
            copies = 1 if self.share_prefill else n
            single = KVCache(cfg, copies, len(prompt), device=self.device, dtype=self.cache_dtype)
            idx = torch.tensor([prompt] * copies, device=self.device)
            h = model.hidden(idx, kv_cache=single)[:, -1]
            last.append(model.logits(h).expand(n, -1))
            start = longest - len(prompt)
            for layer in range(cfg.n_layer):   # broadcast copy: one prefill feeds n rows
                cache.k[layer][i * n:(i + 1) * n, :, start:longest] = single.k[layer]
                cache.v[layer][i * n:(i + 1) * n, :, start:longest] = single.v[layer]
        cache.pos = longest
        if self.share_prefill and n > 1:   # a prompt's n rows hold the same keys/values: read them once
            cache.shared, cache.group = longest, (n if len(prompts) > 1 else 0)
        return cache, torch.cat(last)

    def _run(self, prompts, n, params: SamplingParams, on_token) -> list[Row]:
        t0 = time.perf_counter()
        total = len(prompts) * n
        longest = max(len(p) for p in prompts)
        cache, logits = self._prefill(prompts, n, longest + params.max_tokens)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        generator = torch.Generator(device=self.device).manual_seed(params.seed)
        fixed = None
        if self.decode != "dynamic":
            from crucible.model.decode_graph import FixedShapeDecoder
            fixed = FixedShapeDecoder(self.model, cache, graph=self.decode == "graph")
        rows = [Row() for _ in range(total)]
        live = list(range(total))             # batch row -> sample index
        steps = 0
        while True:
            chosen = sample_next(logits.float(), params, generator)
            sampled = chosen.tolist()
            if params.logprobs:   # of the temperature-scaled distribution (before top-k / top-p)
                scaled = logits.float() / (params.temperature or 1.0)
                picked = torch.log_softmax(scaled, dim=-1).gather(1, chosen[:, None]).squeeze(1).tolist()
            tokens, tool_calls = [], []
            for b, r in enumerate(live):
                row = rows[r]
                if row.finish is not None:     # finished, waiting to be compacted away
                    tokens.append(row.ids[-1])
                    continue
                forced = bool(row.queue)
                token = row.queue.pop(0) if forced else sampled[b]
                tokens.append(token)
                if params.logprobs:
                    row.logprobs.append(0.0 if forced else picked[b])
                self._append(row, r, token, forced, params, on_token)
                if not forced and token == self.python_end and self.tools and row.finish is None:
                    tool_calls.append(r)
            if tool_calls:
                self._run_tools(rows, tool_calls)
            if all(rows[r].finish is not None for r in live):
                break
            done = [b for b, r in enumerate(live) if rows[r].finish is not None]
            if done and 4 * len(done) >= len(live) and fixed is None:
                keep = [b for b, r in enumerate(live) if rows[r].finish is None]
                cache = cache.select(torch.tensor(keep, device=self.device))
                live = [live[b] for b in keep]
                tokens = [tokens[b] for b in keep]
            idx = torch.tensor(tokens, device=self.device)[:, None]
            if fixed is not None:
                logits = fixed(idx)
            else:
                logits = self.model.logits(self.model.hidden(idx, kv_cache=cache)[:, -1])
            steps += 1
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        stats = {"prefill_s": t1 - t0, "decode_s": t2 - t1, "decode_steps": steps,
                 "prefill_tokens": sum(len(p) for p in prompts) * (1 if self.share_prefill else n),
                 "generated_tokens": sum(len(r.ids) for r in rows)}
        return rows, stats

    def _append(self, row: Row, r: int, token: int, forced: bool, params: SamplingParams, on_token) -> None:
        row.ids.append(token)
        row.forced.append(int(forced))
        if not forced and token in self.stop_ids and not params.ignore_eos:
            row.finish = "stop"
            if on_token is not None:
                on_token(r, token, "", False)
            return
        if not params.stop and on_token is None:   # nothing needs the text before the end
            if len(row.ids) >= params.max_tokens:
                row.finish = "length"
            return
        before = len(row.text)
        row.text = self.tokenizer.decode(row.ids)
        if params.stop and not forced:
            window = max(0, before - max(len(s) for s in params.stop) + 1)
            hits = [i for i in (row.text.find(s, window) for s in params.stop) if i >= 0]
            if hits:
                row.finish, row.cut = "stop", min(hits)
        if row.finish is None and len(row.ids) >= params.max_tokens:
            row.finish = "length"
        if on_token is not None:
            visible = row.text if row.cut is None else row.text[:row.cut]
            end = len(visible)
            if row.finish is None:
                while end > row.streamed and visible[end - 1] == "\ufffd":   # incomplete UTF-8: wait
                    end -= 1
            on_token(r, token, visible[row.streamed:end], forced)
            row.streamed = max(row.streamed, end)

    def _run_tools(self, rows: list[Row], which: list[int]) -> None:
        """Run each row's last python block in the sandbox; queue the output tokens to force."""
        from crucible.languages import run_program

        codes = {}
        for r in which:
            ids = rows[r].ids
            try:
                start = len(ids) - 1 - ids[::-1].index(self.python_start)
            except ValueError:
                continue                      # a python_end without a start: nothing to run
            codes[r] = self.tokenizer.decode(ids[start + 1:-1])
        if not codes:
            return
        def run(code):
            return run_program("python", code, limits=self.tool_limits, unsafe=self.unsafe_tools)
        with ThreadPoolExecutor(max_workers=min(8, len(codes))) as pool:
            outcomes = dict(zip(codes, pool.map(run, codes.values())))
        for r, outcome in outcomes.items():
            result = format_tool_result(outcome)
            rows[r].queue = [self.output_start, *self.tokenizer.encode(result), self.output_end]

    # -- hooks for crucible.model.scheduler (continuous batching across requests) ----------------
    def append_token(self, row: Row, index: int, token: int, params: SamplingParams, on_token=None) -> None:
        """Record a sampled token in `row`: stop tokens and strings, max_tokens, streamed text."""
        self._append(row, index, token, False, params, on_token)

    def completion(self, row: Row) -> Completion:
        return self._completion(row)

    def _completion(self, row: Row) -> Completion:
        ids = row.ids
        shown = ids[:-1] if ids and row.finish == "stop" and row.cut is None and ids[-1] in self.stop_ids \
            and not row.forced[-1] else ids
        text = self.tokenizer.decode(shown)
        if row.cut is not None:
            text = text[:row.cut]
        return Completion(ids=list(ids), text=text, forced_mask=list(row.forced), finish_reason=row.finish or "length",
                          logprobs=list(row.logprobs))
