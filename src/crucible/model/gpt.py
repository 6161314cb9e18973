"""The native GPT: a small decoder-only transformer in the style of the strongest speedrun recipes.

What is in it (and where the idea comes from):
- token embedding, normalised before the first block (nanochat); no positional embedding: RoPE on
  queries and keys;
- pre-norm blocks with parameter-free RMSNorm (`F.rms_norm`), QK-norm (RMSNorm of each head's query
  and key, which keeps attention logits bounded and lets learning rates be high);
- grouped-query attention (`n_kv_head` key/value heads shared by `n_head` query heads) through
  `F.scaled_dot_product_attention` (flash / memory-efficient kernels on GPU);
- ReLU² MLP (modded-nanogpt), no biases anywhere;
- output projections (attention `o_proj`, MLP `down_proj`) initialised to zero, so every block starts
  as the identity and the model as a bigram; the untied head starts near zero too;
- logit soft-cap `softcap * tanh(logits / softcap)` (Gemma 2, modded-nanogpt), computed in float32;
- optional tied embeddings; optional U-Net skips (the first half's block outputs are added, with
  learned weights starting at 1, to the mirrored blocks of the second half) and value embeddings
  (extra embedding tables added, with learned gates starting at 0.5, to the values of the first and
  last few layers), both from modded-nanogpt. Neither changes the function at initialisation: the
  output projections are zero, and every block (and the head) sees its input through an RMSNorm,
  which ignores the scale that the skips add.

One dial: `GPTConfig.from_depth(depth, vocab_size)` sets width = 64·depth (rounded up to whole
128-wide heads), heads of 128, and half as many key/value heads when the head count is even.

Module and parameter names follow Llama's (`model.layers.0.self_attn.q_proj`), so the checkpoint
that `save_pretrained` writes loads as a Hugging Face model (see `hf.py`) and PEFT's usual target
names (q_proj, v_proj, ...) apply. This file imports only torch: the engine's KV cache (`KVCache`)
is defined here because `forward` writes into it. Inside `GPT.decoding()` (the engine), with
gradients off, forwards take a decoding path: the q/k/v weights stacked into one matrix, every
matrix prepacked for oneDNN on CPU (`DecodeMatrix`, cached, rebuilt when a weight changes; about
one extra copy of the weights while it lives), q and k rotated/normalised together, single-query
attention with the query heads of a key/value head grouped (no expanded cache), the prompt's
keys/values read once for n samples of it (`shared_prefix_attention`), and the soft-cap through a
sigmoid. Same float32 function to ~5e-6 in the logits; training, and `torch.compile` of it,
never take that path.

Fixed-shape decoding (for CUDA graphs, `decode_graph.py`): a cache whose `slot` is set (a device
tensor equal to `pos`) is written at that tensor with `index_copy_`, and single-token forwards
attend over all its slots with a mask hiding the unwritten ones, RoPE positions gathered on the
device. Every tensor then keeps its shape and address from step to step, so one captured step
replays for the whole completion. Same function as the sliced cache (masked slots weigh exactly 0).

Not covered: dropout (small models trained on much data do not need it), biases, MoE,
sliding-window attention.
"""

from __future__ import annotations

import dataclasses
import json
import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

HEAD_DIM = 128      # from_depth's head width
ASPECT_RATIO = 64   # from_depth's width per layer


@dataclass
class GPTConfig:
    vocab_size: int = 32768
    seq_len: int = 1024
    n_layer: int = 12
    n_head: int = 6
    n_kv_head: int = 3
    n_embd: int = 768
    mlp_ratio: int = 4
    softcap: float = 15.0          # 0 disables the soft-cap
    tie_embeddings: bool = False
    unet_skips: bool = False
    value_embeds: bool = False
    rope_base: float = 10000.0

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"n_head {self.n_head} is not a multiple of n_kv_head {self.n_kv_head}")
        if self.head_dim % 2:
            raise ValueError(f"head width {self.head_dim} must be even for RoPE")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def n_value_embeds(self) -> int:
        """How many value-embedding tables (each used by one early and one late layer)."""
        return min(3, self.n_layer // 2) if self.value_embeds else 0

    @classmethod
    def from_depth(cls, depth: int, vocab_size: int, seq_len: int = 1024, **overrides) -> GPTConfig:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        n_embd = -(-depth * ASPECT_RATIO // HEAD_DIM) * HEAD_DIM
        n_head = n_embd // HEAD_DIM
        n_kv_head = n_head // 2 if n_head % 2 == 0 else n_head
        fields = dict(vocab_size=vocab_size, seq_len=seq_len, n_layer=depth, n_head=n_head,
                      n_kv_head=n_kv_head, n_embd=n_embd)
        if "n_embd" in overrides and "n_head" not in overrides:  # keep 128-wide heads if they fit
            width = overrides["n_embd"]
            fields["n_head"] = max(1, width // HEAD_DIM) if width % HEAD_DIM == 0 else 1
            fields["n_kv_head"] = fields["n_head"] // 2 if fields["n_head"] % 2 == 0 else fields["n_head"]
        fields.update(overrides)
        return cls(**fields)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GPTConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def norm(x: torch.Tensor) -> torch.Tensor:
    return F.rms_norm(x, (x.size(-1),))


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[i], x[i + d/2]); x is [B, T, H, D], cos/sin broadcast to [B, T, 1, D/2]."""
    d = x.size(-1) // 2
    x1, x2 = x[..., :d], x[..., d:]
    return torch.cat([x1 * cos + x2 * sin, x2 * cos - x1 * sin], dim=-1)


def rope_tables(head_dim: int, length: int, base: float, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim))
    angles = torch.outer(torch.arange(length, dtype=torch.float32, device=device), inv_freq)
    return angles.cos(), angles.sin()


class KVCache:
    """Keys and values of every layer for a batch of sequences, preallocated to `max_len` slots.

    All rows share one write position `pos`. Rows may start later than slot 0 (`pad[b]` leading
    slots are empty) so that prompts of different lengths end at the same slot and decode in
    lockstep; those rows get their own RoPE positions and a mask that hides the empty slots.
    """

    def __init__(self, config: GPTConfig, batch: int, max_len: int, *, device=None, dtype=torch.float32,
                 pad: torch.Tensor | None = None):
        shape = (batch, config.n_kv_head, max_len, config.head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.pos = 0
        self.pad = pad  # LongTensor [batch] or None (no row is padded)
        self.shared = 0  # leading slots holding the same keys/values in every row of a group
        self.group = 0   # rows per group (n samples of one prompt; consecutive rows); 0: all rows
        self.slot = None  # LongTensor [1] == pos on the device: fixed-shape decoding (see the module doc)

    @property
    def batch(self) -> int:
        return self.k[0].size(0)

    @property
    def max_len(self) -> int:
        return self.k[0].size(2)

    def select(self, rows: torch.Tensor) -> KVCache:
        """A cache holding only `rows` (an index tensor; repeats copy a row: n samples, one prefill)."""
        out = KVCache.__new__(KVCache)
        out.k = [t.index_select(0, rows) for t in self.k]
        out.v = [t.index_select(0, rows) for t in self.v]
        out.pos, out.group, out.slot = self.pos, 0, None
        out.shared = self.shared if not self.group or self.group == self.batch else 0   # groups broken up
        out.pad = None if self.pad is None else self.pad.index_select(0, rows)
        return out


def shared_prefix_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, shared: int, group: int = 0,
                            pad: torch.Tensor | None = None) -> torch.Tensor:
    """Single-query attention, q [B, Hk, G, D] over k, v [B, Hk, S, D] whose first `shared` slots
    are the same in every row of each group of `group` consecutive rows (0: one group; n samples of
    one prompt), the first `pad[b]` of them empty: the prefix is read once per group for its n·G
    queries, the rest per row, and the two softmaxes merged by their log-sum-exps (as cascade /
    Hydragen attention does). Decoding reads the whole cache every step, so this halves the memory
    traffic when the prompt is as long as the completion. CPU only (the flash kernel that returns
    the log-sum-exp is `aten::_scaled_dot_product_flash_attention_for_cpu`)."""
    B, Hk, G, D = q.shape
    n = group or B
    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    mask = None
    if pad is not None:   # additive mask over each group's empty leading slots: [groups, 1, 1, shared]
        empty = torch.arange(shared, device=q.device)[None, :] < pad[::n, None]
        mask = torch.zeros(empty.shape, dtype=q.dtype, device=q.device).masked_fill_(empty, float("-inf"))[:, None, None]
    qs = q.view(B // n, n, Hk, G, D).transpose(1, 2).reshape(B // n, Hk, n * G, D)
    y1, lse1 = flash(qs, k[::n, :, :shared], v[::n, :, :shared], attn_mask=mask)
    y2, lse2 = flash(q, k[:, :, shared:], v[:, :, shared:])
    y1 = y1.reshape(B // n, Hk, n, G, D).transpose(1, 2).reshape(B, Hk, G, D)
    lse1 = lse1.reshape(B // n, Hk, n, G).transpose(1, 2).reshape(B, Hk, G)
    lse = torch.logaddexp(lse1, lse2)
    w1, w2 = (lse1 - lse).exp_().unsqueeze(-1).to(q.dtype), (lse2 - lse).exp_().unsqueeze(-1).to(q.dtype)
    return y1 * w1 + y2 * w2


class DecodeMatrix:
    """The weights of one or more bias-free linears (stacked: one matmul for q/k/v) prepared for
    decoding, rebuilt whenever a weight changes (in-place updates bump `_version`, `.to()` moves
    `data_ptr`). On CPU in float32 the matrix is prepacked once into oneDNN's blocked layout
    (`torch.ops.mkldnn`, what Inductor's CPU freezing uses): with a decoding batch of a few rows,
    oneDNN on a prepacked weight is 2-2.5x faster than `F.linear` (MKL sgemm) for the MLP and head
    matrices here (docs/model.md). Still float32 (oneDNN's default fp32 math mode; only the
    summation order differs); anywhere else, or if packing fails or disagrees with `F.linear` on a
    probe, plain `F.linear` on the stacked weight."""

    def __init__(self, *linears: nn.Linear, relu: bool = False):
        self.linears, self.relu = linears, relu
        self.key, self.weight, self.packed = None, None, False

    def _prepare(self, x: torch.Tensor) -> None:
        ws = [lin.weight for lin in self.linears]
        device = x.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else ws[0].dtype
        key = (dtype, x.dtype, *((w._version, w.data_ptr()) for w in ws))
        if key == self.key:
            return
        ws = [w.detach() for w in ws]
        w = (torch.cat(ws) if len(ws) > 1 else ws[0]).to(dtype)
        self.key, self.weight, self.packed = key, w, False
        if device == "cpu" and dtype == x.dtype == torch.float32 and torch.backends.mkldnn.is_available():
            try:
                packed = torch.ops.mkldnn._reorder_linear_weight(w, max(1, x.numel() // x.size(-1)))
                probe = torch.linspace(-1, 1, w.size(1)).view(1, -1)
                agree = torch.allclose(self._packed(probe, packed), F.linear(probe, w), rtol=1e-4, atol=1e-5)
            except (AttributeError, RuntimeError, NotImplementedError):   # op missing in this build
                agree = False
            if agree:
                self.weight, self.packed = packed, True

    @staticmethod
    def _packed(x, weight, attr="none"):
        return torch.ops.mkldnn._linear_pointwise(x, weight, None, attr, [], "")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self._prepare(x)
        if self.packed:
            return self._packed(x, self.weight, "relu" if self.relu else "none")
        y = F.linear(x, self.weight)
        return F.relu(y) if self.relu else y


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig, layer_idx: int, has_value_embed: bool):
        super().__init__()
        self.layer_idx = layer_idx
        self.n_head, self.n_kv_head, self.head_dim = config.n_head, config.n_kv_head, config.head_dim
        C, kv = config.n_embd, config.n_kv_head * config.head_dim
        self.q_proj = nn.Linear(C, C, bias=False)
        self.k_proj = nn.Linear(C, kv, bias=False)
        self.v_proj = nn.Linear(C, kv, bias=False)
        self.o_proj = nn.Linear(C, C, bias=False)
        self.ve_gate = nn.Parameter(torch.zeros(1)) if has_value_embed else None
        self.qkv_decode = DecodeMatrix(self.q_proj, self.k_proj, self.v_proj)
        self.o_decode = DecodeMatrix(self.o_proj)
        self.fuse_qkv = False        # set by GPT.decoding()

    def forward(self, x, cos, sin, mask, ve=None, kv_cache: KVCache | None = None):
        B, T, C = x.shape
        H, Hk, D = self.n_head, self.n_kv_head, self.head_dim
        decoding = self.fuse_qkv and not torch.is_grad_enabled()
        if not decoding:
            q = norm(apply_rope(self.q_proj(x).view(B, T, H, D), cos, sin))
            k = norm(apply_rope(self.k_proj(x).view(B, T, Hk, D), cos, sin))
            v = self.v_proj(x).view(B, T, Hk, D)
        else:  # decoding: one matmul; q and k rotated and normalised as one tensor
            qkv = self.qkv_decode(x).view(B, T, H + 2 * Hk, D)
            qk = norm(apply_rope(qkv[:, :, :H + Hk], cos, sin))
            q, k, v = qk[:, :, :H], qk[:, :, H:], qkv[:, :, H + Hk:]
        if ve is not None:
            v = v + self.ve_gate.to(v.dtype) * ve.view_as(v)
        # under autocast the projections are bf16 but RoPE (float32 tables) promotes q, k: re-align
        if q.dtype != v.dtype:
            q, k = q.to(v.dtype), k.to(v.dtype)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if kv_cache is not None and kv_cache.slot is not None:   # fixed shapes: every slot, masked
            kc, vc = kv_cache.k[self.layer_idx], kv_cache.v[self.layer_idx]
            kc.index_copy_(2, kv_cache.slot, k.to(kc.dtype))
            vc.index_copy_(2, kv_cache.slot, v.to(vc.dtype))
            k, v = kc, vc
        elif kv_cache is not None:
            start, end = kv_cache.pos, kv_cache.pos + T
            kc, vc = kv_cache.k[self.layer_idx], kv_cache.v[self.layer_idx]
            kc[:, :, start:end] = k
            vc[:, :, start:end] = v
            k, v = kc[:, :, :end], vc[:, :, :end]
            if q.dtype != k.dtype:
                q = q.to(k.dtype)
        if decoding and T == 1:
            # one query per row: the G query heads sharing a key/value head become G queries of
            # that head (no expanded copy of the cache); a [B, 1, 1, slots] mask broadcasts over them
            q = q.reshape(B, Hk, H // Hk, D)
            shared = kv_cache.shared if kv_cache is not None else 0
            if B > 1 and 0 < shared < k.size(2) and q.device.type == "cpu":
                y = shared_prefix_attention(q, k, v, shared, kv_cache.group, kv_cache.pad)
            else:
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=None if isinstance(mask, str) else mask)
            return self.o_decode(y.reshape(B, 1, C))
        is_causal = isinstance(mask, str)  # "causal": the plain lower-triangular mask
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=None if is_causal else mask, is_causal=is_causal,
                                           enable_gqa=self.n_kv_head != self.n_head)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.o_decode(y) if decoding else self.o_proj(y)


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.up_proj = nn.Linear(config.n_embd, config.mlp_ratio * config.n_embd, bias=False)
        self.down_proj = nn.Linear(config.mlp_ratio * config.n_embd, config.n_embd, bias=False)
        self.up_decode, self.down_decode = DecodeMatrix(self.up_proj, relu=True), DecodeMatrix(self.down_proj)
        self.decode = False          # set by GPT.decoding()

    def forward(self, x):
        if self.decode and not torch.is_grad_enabled():
            return self.down_decode(self.up_decode(x).square())
        return self.down_proj(F.relu(self.up_proj(x)).square())


class Block(nn.Module):
    def __init__(self, config: GPTConfig, layer_idx: int, has_value_embed: bool, takes_skip: bool):
        super().__init__()
        self.self_attn = CausalSelfAttention(config, layer_idx, has_value_embed)
        self.mlp = MLP(config)
        self.skip_weight = nn.Parameter(torch.zeros(1)) if takes_skip else None

    def forward(self, x, cos, sin, mask, ve=None, skip=None, kv_cache=None):
        if skip is not None:
            x = x + self.skip_weight.to(x.dtype) * skip
        x = x + self.self_attn(norm(x), cos, sin, mask, ve, kv_cache)
        return x + self.mlp(norm(x))


def value_embed_index(config: GPTConfig, layer: int) -> int | None:
    """Which value-embedding table layer `layer` uses: tables 0..k-1 in the first k and last k layers."""
    k = config.n_value_embeds
    if layer < k:
        return layer
    if layer >= config.n_layer - k:
        return layer - (config.n_layer - k)
    return None


def document_positions_and_mask(segments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For packed rows: each token's position inside its document [B, T], and the block-diagonal
    causal mask [B, 1, T, T] (True = may attend) that keeps every document to itself."""
    B, T = segments.shape
    index = torch.arange(T, device=segments.device).expand(B, T)
    starts = torch.ones_like(segments, dtype=torch.bool)
    starts[:, 1:] = segments[:, 1:] != segments[:, :-1]
    positions = index - torch.where(starts, index, torch.zeros_like(index)).cummax(dim=1).values
    same = segments[:, :, None] == segments[:, None, :]
    return positions, (same & (index[:, None, :] <= index[:, :, None]))[:, None]


def skip_source(config: GPTConfig, layer: int) -> int | None:
    """With U-Net skips, which earlier layer's output layer `layer` receives (mirror image)."""
    half = config.n_layer // 2
    if not config.unet_skips or layer < config.n_layer - half:
        return None
    return config.n_layer - 1 - layer


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        C, kv = config.n_embd, config.n_kv_head * config.head_dim
        layers = [Block(config, i, value_embed_index(config, i) is not None, skip_source(config, i) is not None)
                  for i in range(config.n_layer)]
        self.model = nn.ModuleDict(dict(embed_tokens=nn.Embedding(config.vocab_size, C), layers=nn.ModuleList(layers)))
        if config.n_value_embeds:
            self.model["value_embeds"] = nn.ModuleList(nn.Embedding(config.vocab_size, kv)
                                                      for _ in range(config.n_value_embeds))
        self.lm_head = nn.Linear(C, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.head_decode = DecodeMatrix(self.lm_head)
        self.decode = False          # set by decoding()
        self._rope_len = 0
        self.register_buffer("rope_cos", torch.empty(0), persistent=False)
        self.register_buffer("rope_sin", torch.empty(0), persistent=False)
        self.init_weights()

    # -- setup -----------------------------------------------------------------------------------
    @torch.no_grad()
    def init_weights(self) -> None:
        """nanochat's scheme: embeddings N(0, 1), matrices U(±√3/√C) (std 1/√C), outputs zero;
        value-embedding gates 0.5 and skip weights 1 (modded-nanogpt)."""
        cfg = self.config
        bound = math.sqrt(3.0 / cfg.n_embd)
        for block in self.model.layers:
            attn, mlp = block.self_attn, block.mlp
            for lin in (attn.q_proj, attn.k_proj, attn.v_proj, mlp.up_proj):
                lin.weight.uniform_(-bound, bound)
            attn.o_proj.weight.zero_()
            mlp.down_proj.weight.zero_()
            if attn.ve_gate is not None:
                attn.ve_gate.fill_(0.5)
            if block.skip_weight is not None:
                block.skip_weight.fill_(1.0)
        if cfg.tie_embeddings:  # one matrix serves as input and head: small, like a head
            self.model.embed_tokens.weight.normal_(0.0, 1.0 / math.sqrt(cfg.n_embd))
        else:
            self.model.embed_tokens.weight.normal_(0.0, 1.0)
            self.lm_head.weight.normal_(0.0, 0.001)
        for table in self.model["value_embeds"] if "value_embeds" in self.model else ():
            table.weight.normal_(0.0, 1.0)

    def _rope(self, length: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin tables covering `length` positions (grown on demand, never saved)."""
        if length > self._rope_len or self.rope_cos.device != torch.device(device):
            n = max(length, 2 * self.config.seq_len)
            self.rope_cos, self.rope_sin = rope_tables(self.config.head_dim, n, self.config.rope_base, device)
            self._rope_len = n
        return self.rope_cos, self.rope_sin

    # -- forward ---------------------------------------------------------------------------------
    def hidden(self, idx: torch.Tensor, *, kv_cache: KVCache | None = None,
               segments: torch.Tensor | None = None) -> torch.Tensor:
        """Final-normed hidden states [B, T, C] (the head's input). With `kv_cache`, `idx` continues
        the cached sequences: its keys/values are written at slot `kv_cache.pos`, which then advances.
        With `segments` [B, T] (packed rows: a document number per token, equal within a document),
        positions restart at each document and attention never crosses from one to another."""
        B, T = idx.shape
        start = kv_cache.pos if kv_cache is not None else 0
        if kv_cache is not None and start + T > kv_cache.max_len:
            raise ValueError(f"KV cache full: {start} + {T} > {kv_cache.max_len} slots")
        cos_t, sin_t = self._rope(start + T, idx.device)
        pad = kv_cache.pad if kv_cache is not None else None
        if segments is not None:
            if kv_cache is not None:
                raise ValueError("packed rows (segments) are for training; they take no KV cache")
            positions, mask = document_positions_and_mask(segments)
            cos, sin = cos_t[positions][:, :, None], sin_t[positions][:, :, None]
        elif kv_cache is not None and kv_cache.slot is not None:
            cos, sin, mask = self._fixed_shape_positions(kv_cache, T, idx.device)
        elif pad is None:
            cos, sin = cos_t[start:start + T][None, :, None], sin_t[start:start + T][None, :, None]
            if start == 0:
                mask = "causal"
            elif T == 1:
                mask = None  # one new token sees every cached slot
            else:
                keys = torch.arange(start + T, device=idx.device)
                mask = keys[None, :] <= (start + torch.arange(T, device=idx.device))[:, None]
        else:
            rows = start + torch.arange(T, device=idx.device)[None, :]          # [1, T] slot of each token
            positions = (rows - pad[:, None]).clamp(min=0)                       # [B, T]
            cos, sin = cos_t[positions][:, :, None], sin_t[positions][:, :, None]
            keys = torch.arange(start + T, device=idx.device)
            mask = (keys[None, None, :] <= rows[:, :, None]) & (keys[None, None, :] >= pad[:, None, None])
            mask = mask[:, None]                                                 # [B, 1, T, slots]
        x = norm(self.model.embed_tokens(idx))
        if cos.dtype != x.dtype:
            cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        value_embeds = [e(idx) for e in self.model["value_embeds"]] if "value_embeds" in self.model else []
        outputs = []
        for i, block in enumerate(self.model.layers):
            j, s = value_embed_index(self.config, i), skip_source(self.config, i)
            x = block(x, cos, sin, mask, value_embeds[j] if j is not None else None,
                      outputs[s] if s is not None else None, kv_cache)
            if self.config.unet_skips:
                outputs.append(x)
        if kv_cache is not None:
            kv_cache.pos += T
            if kv_cache.slot is not None:
                kv_cache.slot.add_(T)
        return norm(x)

    def _fixed_shape_positions(self, cache: KVCache, T: int, device):
        """RoPE tables [B or 1, 1, 1, D/2] and mask [B or 1, 1, 1, slots] for one token per row
        written at `cache.slot`: computed on the device from tensors, so a CUDA graph can replay them."""
        if T != 1:
            raise ValueError(f"fixed-shape decoding takes one token per row, got {T}")
        cos_t, sin_t = self._rope(cache.max_len, device)        # sized once: never regrown in a graph
        slots = torch.arange(cache.max_len, device=device)
        first = cache.pad if cache.pad is not None else torch.zeros(1, dtype=torch.long, device=device)
        positions = (cache.slot - first).clamp(min=0)                                  # [B or 1]
        mask = (slots[None, :] <= cache.slot) & (slots[None, :] >= first[:, None])     # [B or 1, slots]
        return cos_t[positions][:, None, None], sin_t[positions][:, None, None], mask[:, None, None]

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Soft-capped float32 logits from hidden states."""
        cap = self.config.softcap
        if self.decode and not torch.is_grad_enabled():
            # cap·tanh(x/cap) = 2cap·sigmoid(2x/cap) − cap: 4x faster on CPU than torch.tanh here,
            # within 4e-6 of the exact value (tanh's own error: 1e-6), in place on the fresh tensor
            logits = self.head_decode(h).float()
            return torch.sigmoid(logits.mul_(2 / cap)).mul_(2 * cap).sub_(cap) if cap else logits
        logits = self.lm_head(h).float()
        return cap * torch.tanh(logits / cap) if cap else logits

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *, kv_cache: KVCache | None = None,
                segments: torch.Tensor | None = None):
        """Logits [B, T, V], or with `targets` the mean cross-entropy over targets != -1."""
        logits = self.logits(self.hidden(idx, kv_cache=kv_cache, segments=segments))
        if targets is None:
            return logits
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)

    @contextmanager
    def decoding(self):
        """Within this block, no-grad forwards use the fused decoding path (see the module doc)."""
        flags = [(block.self_attn, "fuse_qkv") for block in self.model.layers]
        flags += [(block.mlp, "decode") for block in self.model.layers] + [(self, "decode")]
        before = [getattr(m, name) for m, name in flags]
        for m, name in flags:
            setattr(m, name, True)
        try:
            yield self
        finally:
            for (m, name), b in zip(flags, before):
                setattr(m, name, b)

    # -- introspection ---------------------------------------------------------------------------
    def num_params(self, *, embeddings: bool = True) -> int:
        """Distinct parameters (a tied head counts once); without the input/value embedding tables."""
        total = sum(p.numel() for p in self.parameters())
        if not embeddings:
            total -= sum(p.numel() for n, p in self.named_parameters()
                         if n.startswith("model.embed_tokens") or n.startswith("model.value_embeds"))
            if self.config.tie_embeddings:  # the tied matrix is also the head: count it as such
                total += self.lm_head.weight.numel()
        return total

    def summary(self) -> str:
        c = self.config
        return (f"GPT depth {c.n_layer}: width {c.n_embd}, {c.n_head} heads of {c.head_dim} "
                f"({c.n_kv_head} kv), vocab {c.vocab_size}, context {c.seq_len}; "
                f"{self.num_params() / 1e6:.2f}M parameters ({self.num_params(embeddings=False) / 1e6:.2f}M "
                f"without embedding tables)")

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by role, for optimisers that treat them differently (Muon for `matrices`,
        AdamW for the rest): embeddings, head, matrices (2-D inside blocks), scalars (gates)."""
        groups = {"embeddings": [], "head": [], "matrices": [], "scalars": []}
        seen = set()
        for name, p in self.named_parameters():
            if id(p) in seen:
                continue
            seen.add(id(p))
            if name.startswith("lm_head"):
                groups["head"].append(p)
            elif name.startswith("model.embed_tokens") or name.startswith("model.value_embeds"):
                groups["embeddings"].append(p)
            elif p.ndim >= 2:
                groups["matrices"].append(p)
            else:
                groups["scalars"].append(p)
        return groups

    # -- checkpoints -----------------------------------------------------------------------------
    def save_pretrained(self, dir, tokenizer=None) -> None:
        """config.json + model.safetensors (+ tokenizer, + the Hugging Face remote code); see hf.py."""
        from crucible.model import hf
        hf.save_checkpoint(self, dir, tokenizer)

    @classmethod
    def from_pretrained(cls, dir, *, device=None) -> GPT:
        """Raises NotACheckpoint (naming `dir` and what is missing) before building anything."""
        from safetensors.torch import load_file
        path = checkpoint_dir(dir)
        raw = checkpoint_config(path)
        model = cls(GPTConfig.from_dict(raw.get("crucible", raw)))
        state = load_file(str(path / "model.safetensors"), device=str(device or "cpu"))
        if model.config.tie_embeddings:
            state.pop("lm_head.weight", None)
            state["lm_head.weight"] = state["model.embed_tokens.weight"]
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{path / 'model.safetensors'}: missing {missing}, unexpected {unexpected}")
        return model.to(device) if device is not None else model


class NotACheckpoint(ValueError):
    """A path that is not a native crucible checkpoint; the message names it and what is missing."""


def checkpoint_dir(dir) -> Path:
    """`dir`, or, for a training run's directory (no model.safetensors but a `latest` pointer, as pretrain
    and sft write), the checkpoint that pointer names: `native:runs/base` means its latest weights."""
    path = Path(dir)
    pointer = path / "latest"
    if not (path / "model.safetensors").is_file() and pointer.is_file():
        return path / pointer.read_text().strip()
    return path


def checkpoint_config(dir, *, also: tuple[str, ...] = ()) -> dict:
    """The parsed config.json of checkpoint `dir`, after checking that config.json, model.safetensors
    and the files in `also` are there: the one check the library and the commands share."""
    from crucible.model.hf import MODEL_TYPE

    path = Path(dir)
    if not path.is_dir():
        raise NotACheckpoint(f"{path}: not a checkpoint (no such directory)")
    missing = [n for n in ("config.json", "model.safetensors", *also) if not (path / n).is_file()]
    if missing:
        raise NotACheckpoint(f"{path}: not a checkpoint (no {', '.join(missing)})")
    try:
        raw = json.loads((path / "config.json").read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise NotACheckpoint(f"{path / 'config.json'}: not a checkpoint config ({e})") from None
    if not isinstance(raw, dict):
        raise NotACheckpoint(f"{path / 'config.json'}: not a checkpoint config (not a JSON object)")
    if raw.get("model_type", MODEL_TYPE) != MODEL_TYPE:
        raise NotACheckpoint(f"{path}: a {raw['model_type']!r} model, not a native crucible checkpoint "
                             "(load it with transformers: hf:DIR)")
    return raw
