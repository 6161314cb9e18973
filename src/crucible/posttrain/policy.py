"""The model being post-trained, native or Hugging Face, behind the few operations the methods need.

`load_policy("native:DIR" | "hf:DIR", lora_rank=R)` gives a `Policy`: the module, its tokenizer and
renderer, and
- `sft_loss_sum(batch)`: summed cross-entropy over trained tokens, through the chunked linear CE of
  crucible.train.loss (never the full logits);
- `token_logprobs(batch)`: log-probability of every target token, with gradients (DPO, GRPO);
- `save(dir)`: a directory `crucible eval --model native:DIR` / `hf:DIR` evaluates directly.

The first two run the head only on the trained positions (prompt, padding and tool output never
reach it): the final hidden states are gathered at indices found on the host from the batch's CPU
targets, so there is no device sync. That needs the logits to be exactly `lm_head(hidden)`: true
of crucible's GPT (plus its softcap) and of the HF families in PLAIN_HEAD; any other HF model
(logit scales, softcaps, custom heads) falls back to its own full logits.

LoRA is PEFT's, on the attention and MLP projections (names are Llama's in both families). On a
native model the adapters are injected into the GPT itself; `save` writes the merged weights (a
native checkpoint has no adapter loader) and the adapter beside them in `adapter/`. On an HF model
`save` writes the adapter (adapter_config.json naming the base directory), which transformers loads
with its base; `crucible sft merge` folds it in. `adapters_off()` is the reference model under
LoRA (no second copy of the weights); `merged()` folds the adapters in for the native engine,
whose fused decoding matrices read the base weights.

New special tokens (`add_tokens`, HF models) get the embedding and head rows of an existing token
plus small noise, so they start as "something like end-of-text" rather than random.

Under FSDP2 (SFT's `--dist fsdp`, full fine-tuning only) the parameters are shards; `save` is then
given the gathered state dict and writes it through a plain copy of the model.

Not covered: quantised (QLoRA) bases, sharding a LoRA policy.
"""

from __future__ import annotations

import json
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

from crucible.posttrain.pack import IGNORE, Batch
from crucible.posttrain.render import HFRenderer, NativeRenderer

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"]
# HF model types whose logits are lm_head(last hidden state), nothing more (their modeling code)
PLAIN_HEAD = {"llama", "mistral", "qwen2", "qwen3", "starcoder2", "phi3", "smollm3"}


class PolicyError(ValueError):
    """The model spec cannot be loaded as a policy."""


def parse_model_spec(spec: str) -> tuple[str, str]:
    from crucible.generate.registry import parse_spec
    from crucible.generate.types import BackendError

    try:
        kind, target = parse_spec(spec)
    except BackendError as e:
        raise PolicyError(str(e)) from None
    if kind not in ("native", "hf"):
        raise PolicyError(f"{spec}: post-training needs the weights: native:DIR or hf:DIR")
    if not Path(target).is_dir():
        raise PolicyError(f"{spec}: {target} is not a directory")
    return kind, target


def lora_config(rank: int, alpha: float | None = None):
    from peft import LoraConfig

    return LoraConfig(r=rank, lora_alpha=alpha or 2 * rank, lora_dropout=0.0, target_modules=LORA_TARGETS)


def _tuner_layers(model):
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [m for m in model.modules() if isinstance(m, BaseTunerLayer)]


class Policy:
    def __init__(self, kind: str, model, tokenizer, path: str, lora_rank: int = 0, dtype: str = "float32"):
        self.kind, self.model, self.tokenizer, self.path = kind, model, tokenizer, path
        self.lora_rank = lora_rank
        self.renderer = NativeRenderer(tokenizer) if kind == "native" else HFRenderer(tokenizer)
        self.device = next(model.parameters()).device
        self.amp = torch.bfloat16 if dtype == "bfloat16" else None

    # -- forward ------------------------------------------------------------------------------
    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp) if self.amp else nullcontext()

    def _hf_logits(self, batch: Batch, model) -> torch.Tensor:
        # no cache and no attention mask: transformers then reads document boundaries from position_ids
        out = model(input_ids=batch.input_ids.to(self.device), position_ids=batch.position_ids.to(self.device),
                    use_cache=False)
        return out.logits.float()

    def _trained_hidden(self, batch: Batch, model):
        """(final hidden states at the trained positions [N, C], their targets [N], the flat indices
        of those positions [N]), or None for an HF model whose logits are not a plain head (then
        the caller takes the full logits)."""
        if self.kind == "hf" and getattr(model.config, "model_type", None) not in PLAIN_HEAD:
            return None
        flat = batch.targets.view(-1)
        where = (flat != IGNORE).nonzero().squeeze(1)          # on the host: no device sync
        targets = flat[where].to(self.device, non_blocking=True)
        where = where.to(self.device, non_blocking=True)
        if self.kind == "native":
            h = model.hidden(batch.input_ids.to(self.device), segments=batch.segments.to(self.device))
        else:
            h = model.get_decoder()(input_ids=batch.input_ids.to(self.device),
                                    position_ids=batch.position_ids.to(self.device), use_cache=False).last_hidden_state
        return h.reshape(-1, h.size(-1)).index_select(0, where), targets, where

    def sft_loss_sum(self, batch: Batch, model=None) -> torch.Tensor:
        """Summed cross-entropy over trained tokens (`model`: the policy's module as the loop passes it)."""
        from crucible.train.loss import chunked_cross_entropy

        model = model if model is not None else self.model
        with self.autocast():
            trained = self._trained_hidden(batch, model)
            if trained is None:
                logits = self._hf_logits(batch, model)
                return F.cross_entropy(logits.view(-1, logits.size(-1)), batch.targets.to(self.device).view(-1),
                                       ignore_index=IGNORE, reduction="sum")
            h, targets, _ = trained
            if self.kind == "native":
                weight, softcap = model.lm_head.weight, model.config.softcap or None
            else:
                weight, softcap = model.get_output_embeddings().weight, None
            return chunked_cross_entropy(h, weight, targets, softcap) * targets.numel()

    def token_logprobs(self, batch: Batch, temperature: float = 1.0, model=None) -> torch.Tensor:
        """[B, T] log p(target) under the policy (logits / temperature; `model`: a frozen reference
        of the same kind instead); 0 where the target is -1."""
        model = model if model is not None else self.model
        with self.autocast():
            trained = self._trained_hidden(batch, model)
            if trained is None:
                logits = self._hf_logits(batch, model)
            else:
                h, targets, where = trained
                logits = model.logits(h) if self.kind == "native" else model.get_output_embeddings()(h)
        logits = logits.float() / temperature
        if trained is None:
            targets = batch.targets.to(self.device)
            valid = targets != IGNORE
            picked = logits.gather(-1, torch.where(valid, targets, 0)[..., None]).squeeze(-1)
            return (picked - torch.logsumexp(logits, dim=-1)) * valid
        values = logits.gather(1, targets[:, None]).squeeze(1) - torch.logsumexp(logits, dim=-1)
        out = torch.zeros(batch.targets.numel(), dtype=values.dtype, device=values.device)
        return out.index_copy(0, where, values).view(batch.targets.shape)

    # -- adapters -------------------------------------------------------------------------------
    @contextmanager
    def adapters_off(self):
        """The starting weights under LoRA (the DPO/GRPO reference), without a copy."""
        layers = _tuner_layers(self.model) if self.lora_rank else []
        for layer in layers:
            layer.enable_adapters(False)
        try:
            yield self
        finally:
            for layer in layers:
                layer.enable_adapters(True)

    @contextmanager
    def merged(self):
        """Adapters folded into the base weights (and out again after): for the native engine."""
        layers = _tuner_layers(self.model) if self.lora_rank else []
        with torch.no_grad():
            for layer in layers:
                layer.merge()
        try:
            yield self
        finally:
            with torch.no_grad():
                for layer in layers:
                    layer.unmerge()

    def trainable(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    # -- saving ---------------------------------------------------------------------------------
    def save(self, out, weights: dict | None = None) -> Path:
        """The model in `out`; `weights`: its full state dict gathered from FSDP2's shards (full
        fine-tuning only), written through a plain copy of the model."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        model = self.model if weights is None else self._plain_copy(weights)
        if self.kind == "native":
            (self._native_model() if weights is None else model).save_pretrained(out, self.tokenizer)
            if self.lora_rank:
                self._save_native_adapter(out / "adapter")
        else:
            model.save_pretrained(str(out))
            self.tokenizer.save_pretrained(str(out))
        return out

    def _plain_copy(self, weights: dict):
        """A fresh module of the policy's class and config on the CPU, holding `weights`."""
        if self.lora_rank:
            raise PolicyError("gathered weights are saved for full fine-tuning only")
        plain = type(self.model)(self.model.config)
        plain.load_state_dict(weights)
        return plain

    def _native_model(self):
        """The GPT with any adapters merged (a fresh module; the policy keeps its adapters)."""
        if not self.lora_rank:
            return self.model
        from crucible.model.gpt import GPT

        state = {k: v for k, v in self.model.state_dict().items() if "lora_" not in k and ".base_layer." not in k}
        tuned = {id(m) for m in _tuner_layers(self.model)}
        with torch.no_grad():
            for name, module in self.model.named_modules():
                if id(module) in tuned:
                    state[f"{name}.weight"] = module.base_layer.weight + module.get_delta_weight("default")
        plain = GPT(self.model.config).to(self.device)
        plain.load_state_dict(state)
        return plain

    def _save_native_adapter(self, out: Path) -> None:
        from safetensors.torch import save_file

        out.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous() for k, v in self.model.state_dict().items() if "lora_" in k},
                  str(out / "adapter_model.safetensors"))
        (out / "adapter_config.json").write_text(json.dumps({"r": self.lora_rank, "target_modules": LORA_TARGETS,
                                                             "base": str(Path(self.path).resolve())}) + "\n")


def load_policy(spec: str, *, lora_rank: int = 0, device: str | None = None, dtype: str = "float32") -> Policy:
    kind, path = parse_model_spec(spec)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "native":
        from crucible.model.gpt import GPT, checkpoint_dir
        from crucible.model.tokenizer import Tokenizer

        path = checkpoint_dir(path)
        try:
            model, tokenizer = GPT.from_pretrained(path, device=device), Tokenizer.load(path)
        except (FileNotFoundError, ValueError, KeyError) as e:
            raise PolicyError(f"{spec}: cannot load a crucible checkpoint: {e}") from None
        if lora_rank:
            from peft import inject_adapter_in_model

            for p in model.parameters():
                p.requires_grad_(False)
            model = inject_adapter_in_model(lora_config(lora_rank), model)
    else:
        model, tokenizer = _load_hf(spec, path, device)
        if lora_rank:
            from peft import get_peft_model

            model = get_peft_model(model, lora_config(lora_rank))
    return Policy(kind, model.to(device).train(), tokenizer, path, lora_rank, dtype)


def _load_hf(spec: str, path: str, device: str):
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()
    try:
        model_type = json.loads((Path(path) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError):
        model_type = None
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        # remote code is trusted only for crucible's own checkpoints (the files are ours)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32,
                                                     trust_remote_code=model_type == "crucible_gpt")
    except (OSError, ValueError) as e:
        raise PolicyError(f"{spec}: cannot load a transformers model: {e}") from None
    return model.to(device), tokenizer


def add_tokens(policy: Policy, tokens: list[str], *, like: str | None = None, noise: float = 0.01,
               seed: int = 0) -> list[int]:
    """Add special tokens to an HF policy; each new embedding (and head) row starts as the row of
    `like` (default: the EOS token) plus Gaussian noise of `noise` times that row's std."""
    if policy.kind != "hf":
        raise PolicyError("new tokens are for HF models (crucible's tokenizer has its chat tokens reserved)")
    tok = policy.tokenizer
    new = [t for t in tokens if t not in tok.get_vocab()]
    if not new:
        return []
    tok.add_special_tokens({"additional_special_tokens": new})
    source = tok.convert_tokens_to_ids(like) if like else tok.eos_token_id
    model = policy.model.get_base_model() if hasattr(policy.model, "get_base_model") else policy.model
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    ids = tok.convert_tokens_to_ids(new)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        tables = [model.get_input_embeddings().weight]
        head = model.get_output_embeddings()
        if head is not None and head.weight is not tables[0]:
            tables.append(head.weight)
        for w in tables:
            row = w[source]
            for i in ids:
                w[i] = row + noise * row.std() * torch.randn(row.shape, generator=g).to(row)
    policy.renderer = HFRenderer(tok)
    return ids


def merge_adapter(adapter_dir, out) -> Path:
    """An HF LoRA adapter directory folded into its base model, saved (with the tokenizer) to `out`."""
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    try:
        base = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())["base_model_name_or_path"]
        model_type = json.loads((Path(base) / "config.json").read_text()).get("model_type")
        model = AutoPeftModelForCausalLM.from_pretrained(str(adapter_dir), dtype=torch.float32,
                                                         trust_remote_code=model_type == "crucible_gpt")
        tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
    except (OSError, ValueError, KeyError) as e:
        raise PolicyError(f"{adapter_dir}: cannot load the adapter and its base: {e}") from None
    merged = model.merge_and_unload()
    merged.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return Path(out)
