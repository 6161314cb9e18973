"""crucible's GPT as a Hugging Face model (remote code; self-contained: torch + transformers only).

The same network as `crucible/model/gpt.py`, with the same parameter names, written the transformers
way so the rest of that ecosystem works on crucible checkpoints:
- attention goes through `ALL_ATTENTION_FUNCTIONS[config._attn_implementation]` (sdpa, eager,
  flash_attention_2, flex, or vLLM's paged attention when vLLM's transformers backend serves it);
- keys/values go through the transformers `Cache` (`generate`, TRL);
- `CrucibleForCausalLM` has the usual `labels` loss, so PEFT/TRL train it like any causal LM.

Why a second copy of the math rather than an import of gpt.py: a checkpoint's remote code must load
without crucible installed, and transformers' own policy is one self-contained file per model. A
test in crucible (`tests/test_hf_interop.py`) checks both give the same logits.

transformers 5.24 renamed the KV cache argument and output field `past_key_values` to `cache` (the old
name still works there until 5.40, with a deprecation warning, but 5.24's `generate` passes only
`cache=`). This file speaks whichever name the installed transformers uses (`CACHE`) and accepts both
from callers, so a checkpoint works with every transformers from 5.17 on (tested: 5.17, 5.23, 5.24).

Not covered: output_attentions with sdpa (use attn_implementation="eager"), inputs_embeds together
with value embeddings (those need the token ids), transformers 4.x.
"""

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.cache_utils import DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from .configuration_crucible import CrucibleConfig

# The installed transformers' name for the KV cache, in forward arguments and in model outputs.
CACHE = "cache" if "cache" in BaseModelOutputWithPast.__dataclass_fields__ else "past_key_values"


def rms_norm(x: torch.Tensor) -> torch.Tensor:
    return F.rms_norm(x, (x.size(-1),))


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, T, H, D]; cos/sin [B, T, 1, D/2]: rotate the pairs (x[i], x[i + D/2])."""
    d = x.size(-1) // 2
    x1, x2 = x[..., :d], x[..., d:]
    return torch.cat([x1 * cos + x2 * sin, x2 * cos - x1 * sin], dim=-1)


def eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    groups = module.num_key_value_groups
    key = key.repeat_interleave(groups, dim=1)
    value = value.repeat_interleave(groups, dim=1)
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            weights = weights.masked_fill(~attention_mask, torch.finfo(weights.dtype).min)
        else:
            weights = weights + attention_mask[:, :, :, : key.shape[-2]]
    weights = F.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    out = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return out, weights


class CrucibleRotary(nn.Module):
    """cos/sin for the given positions. The frequencies are recomputed on every call (D/2 numbers)
    rather than kept in a buffer: transformers v5 and vLLM build models on the meta device and would
    leave a non-persistent buffer uninitialised."""

    def __init__(self, config: CrucibleConfig):
        super().__init__()
        self.head_dim, self.base = config.head_dim, config.rope_base

    @torch.no_grad()
    def forward(self, position_ids: torch.Tensor, dtype: torch.dtype):
        d = self.head_dim
        inv_freq = 1.0 / (self.base ** (torch.arange(0, d, 2, dtype=torch.float32, device=position_ids.device) / d))
        angles = position_ids[..., None].float() * inv_freq  # [B, T, D/2]
        return angles.cos()[:, :, None].to(dtype), angles.sin()[:, :, None].to(dtype)


class CrucibleAttention(nn.Module):
    is_causal = True

    def __init__(self, config: CrucibleConfig, layer_idx: int, has_value_embed: bool):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.n_head, self.n_kv_head, self.head_dim = config.n_head, config.n_kv_head, config.head_dim
        self.num_key_value_groups = config.n_head // config.n_kv_head
        self.scaling = self.head_dim ** -0.5
        C, kv = config.n_embd, config.n_kv_head * config.head_dim
        self.q_proj = nn.Linear(C, C, bias=False)
        self.k_proj = nn.Linear(C, kv, bias=False)
        self.v_proj = nn.Linear(C, kv, bias=False)
        self.o_proj = nn.Linear(C, C, bias=False)
        self.ve_gate = nn.Parameter(torch.zeros(1)) if has_value_embed else None

    def forward(self, hidden_states, position_embeddings, attention_mask=None, cache=None, value_embed=None,
                **kwargs):
        B, T, C = hidden_states.shape
        q = self.q_proj(hidden_states).view(B, T, self.n_head, self.head_dim)
        k = self.k_proj(hidden_states).view(B, T, self.n_kv_head, self.head_dim)
        v = self.v_proj(hidden_states).view(B, T, self.n_kv_head, self.head_dim)
        if value_embed is not None:
            v = v + self.ve_gate.to(v.dtype) * value_embed.view_as(v)
        cos, sin = position_embeddings
        q, k = rms_norm(apply_rope(q, cos, sin)), rms_norm(apply_rope(k, cos, sin))
        q, k, v = q.to(v.dtype).transpose(1, 2), k.to(v.dtype).transpose(1, 2), v.transpose(1, 2)
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        impl = self.config._attn_implementation
        attention: Callable = eager_attention_forward if impl in (None, "eager") else ALL_ATTENTION_FUNCTIONS[impl]
        out, weights = attention(self, q, k, v, attention_mask, dropout=0.0, scaling=self.scaling, **kwargs)
        return self.o_proj(out.reshape(B, T, C)), weights


class CrucibleMLP(nn.Module):
    def __init__(self, config: CrucibleConfig):
        super().__init__()
        self.up_proj = nn.Linear(config.n_embd, config.mlp_ratio * config.n_embd, bias=False)
        self.down_proj = nn.Linear(config.mlp_ratio * config.n_embd, config.n_embd, bias=False)

    def forward(self, x):
        return self.down_proj(F.relu(self.up_proj(x)).square())


class CrucibleBlock(GradientCheckpointingLayer):   # transformers' hook for gradient checkpointing
    def __init__(self, config: CrucibleConfig, layer_idx: int, has_value_embed: bool, takes_skip: bool):
        super().__init__()
        self.self_attn = CrucibleAttention(config, layer_idx, has_value_embed)
        self.mlp = CrucibleMLP(config)
        self.skip_weight = nn.Parameter(torch.zeros(1)) if takes_skip else None

    def forward(self, x, position_embeddings, attention_mask=None, value_embed=None, skip=None, cache=None,
                past_key_values=None, **kwargs):
        # Called with `CACHE=`, the name under which GradientCheckpointingLayer drops the cache when it recomputes.
        cache = cache if cache is not None else past_key_values
        if skip is not None:
            x = x + self.skip_weight.to(x.dtype) * skip
        attn, _ = self.self_attn(rms_norm(x), position_embeddings, attention_mask, cache, value_embed, **kwargs)
        x = x + attn
        return x + self.mlp(rms_norm(x))


def n_value_embeds(config) -> int:
    return min(3, config.n_layer // 2) if config.value_embeds else 0


def value_embed_index(config, layer: int) -> Optional[int]:
    k = n_value_embeds(config)
    if layer < k:
        return layer
    if layer >= config.n_layer - k:
        return layer - (config.n_layer - k)
    return None


def skip_source(config, layer: int) -> Optional[int]:
    half = config.n_layer // 2
    if not config.unet_skips or layer < config.n_layer - half:
        return None
    return config.n_layer - 1 - layer


class CruciblePreTrainedModel(PreTrainedModel):
    config_class = CrucibleConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["CrucibleBlock"]
    _skip_keys_device_placement = ["cache", "past_key_values"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module):
        # Only for weights a checkpoint lacks (or from_config): the native initialisation.
        C = self.config.n_embd
        if isinstance(module, nn.Linear):
            module.weight.uniform_(-(3.0 / C) ** 0.5, (3.0 / C) ** 0.5)
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, 1.0)
        elif isinstance(module, CrucibleAttention) and module.ve_gate is not None:
            module.ve_gate.fill_(0.5)
        elif isinstance(module, CrucibleBlock) and module.skip_weight is not None:
            module.skip_weight.fill_(1.0)


class CrucibleModel(CruciblePreTrainedModel):
    def __init__(self, config: CrucibleConfig):
        super().__init__(config)
        kv = config.n_kv_head * config.head_dim
        self.embed_tokens = nn.Embedding(config.vocab_size, config.n_embd)
        self.layers = nn.ModuleList(
            CrucibleBlock(config, i, value_embed_index(config, i) is not None, skip_source(config, i) is not None)
            for i in range(config.n_layer))
        if n_value_embeds(config):
            self.value_embeds = nn.ModuleList(nn.Embedding(config.vocab_size, kv) for _ in range(n_value_embeds(config)))
        else:
            self.value_embeds = None
        self.rotary = CrucibleRotary(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, cache=None, inputs_embeds=None,
                use_cache=None, past_key_values=None, **kwargs) -> BaseModelOutputWithPast:
        cache = cache if cache is not None else past_key_values  # callers written for transformers < 5.24
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        if self.value_embeds is not None and input_ids is None:
            raise ValueError("this model has value embeddings: it needs input_ids, not inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        if position_ids is None:
            seen = cache.get_seq_length() if cache is not None else 0
            position_ids = (torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device) + seen)[None]
        mask = create_causal_mask(config=self.config, inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                  position_ids=position_ids, **{CACHE: cache})
        x = rms_norm(inputs_embeds)
        position_embeddings = self.rotary(position_ids.expand(x.shape[0], -1), x.dtype)
        values = [e(input_ids) for e in self.value_embeds] if self.value_embeds is not None else []
        outputs = []
        for i, block in enumerate(self.layers):
            j, s = value_embed_index(self.config, i), skip_source(self.config, i)
            x = block(x, position_embeddings, mask, values[j] if j is not None else None,
                      outputs[s] if s is not None else None, position_ids=position_ids, **{CACHE: cache}, **kwargs)
            if self.config.unet_skips:
                outputs.append(x)
        return BaseModelOutputWithPast(last_hidden_state=rms_norm(x), **{CACHE: cache})


class CrucibleForCausalLM(CruciblePreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: CrucibleConfig):
        super().__init__(config)
        self.model = CrucibleModel(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, cache=None, inputs_embeds=None,
                labels=None, use_cache=None, logits_to_keep=0, past_key_values=None,
                **kwargs) -> CausalLMOutputWithPast:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         cache=cache, past_key_values=past_key_values, inputs_embeds=inputs_embeds,
                         use_cache=use_cache, **kwargs)
        h = out.last_hidden_state
        if isinstance(logits_to_keep, int) and logits_to_keep:
            h = h[:, -logits_to_keep:]
        elif not isinstance(logits_to_keep, int):
            h = h[:, logits_to_keep]
        logits = self.lm_head(h).float()
        cap = self.config.softcap
        if cap:
            logits = cap * torch.tanh(logits / cap)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        return CausalLMOutputWithPast(loss=loss, logits=logits, **{CACHE: getattr(out, CACHE)})
