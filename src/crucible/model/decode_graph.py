"""One decode step with fixed shapes, replayed as a CUDA graph: what makes small-model decoding fast on a GPU.

Why: a decode step of a 12-layer model is a few hundred small kernels; on a GPU the host cannot
launch them as fast as the GPU runs them, so decoding is launch-bound (the engine measured 1.09x
HF generate before this). A CUDA graph records the step's kernels once and replays them with one
launch. That needs every tensor of the step to keep its shape and address: the batch KV cache is
preallocated already, and with `KVCache.slot` set the model writes and masks by a device-side
position (gpt.py), so the step reads only `tokens` (copied in) and writes `logits` (read out).

`FixedShapeDecoder(model, cache, graph=False)` runs the same fixed-shape step eagerly: on CPU
it is what tests compare token for token with the engine's usual sliced-cache decoding.

Capture: two warm-up steps on a side stream (lazy cuBLAS / allocator set-up must not happen during
capture), then the capture; each writes slot `pos`, which the first real step overwrites before
anything reads it, and `pos` / `slot` are put back after. Not covered: a graph per batch size (the
engine does not compact the batch in this mode: finished rows ride along), sampling inside the
graph (it stays outside, so any sampling parameters work), torch.compile of the step.
"""

from __future__ import annotations

import torch

from crucible.model.gpt import GPT, KVCache

WARMUP_STEPS = 2


class FixedShapeDecoder:
    def __init__(self, model: GPT, cache: KVCache, *, graph: bool = False):
        device = cache.k[0].device
        if graph and device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, the cache is on {device}")
        cache.shared = cache.group = 0        # the prefix-shared attention reads slices: not fixed-shape
        cache.slot = torch.tensor([cache.pos], device=device)
        self.model, self.cache = model, cache
        self.tokens = torch.zeros(cache.batch, 1, dtype=torch.long, device=device)
        self.graph = self.logits = None
        if graph:
            self._capture()

    def _step(self) -> torch.Tensor:
        return self.model.logits(self.model.hidden(self.tokens, kv_cache=self.cache)[:, -1])

    def _rewind(self, pos: int) -> None:
        self.cache.pos = pos
        self.cache.slot.fill_(pos)

    def _capture(self) -> None:
        pos = self.cache.pos
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                self._step()
                self._rewind(pos)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = self._step()
        self._rewind(pos)

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits [B, V] after feeding `tokens` [B, 1]; in graph mode the returned tensor is
        overwritten by the next call."""
        self.tokens.copy_(tokens)
        if self.graph is None:
            return self._step()
        self.graph.replay()
        self.cache.pos += 1
        return self.logits
