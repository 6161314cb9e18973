"""Checkpoints that both crucible and Hugging Face load: config.json + model.safetensors + remote code.

`save_checkpoint(model, dir, tokenizer)` (what `GPT.save_pretrained` calls) writes:
- config.json: the native GPTConfig fields, plus `model_type`, `architectures` and an `auto_map` that
  points transformers at the two remote-code files copied alongside (`remote/`), so
  `AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)` works (and with it PEFT, TRL
  and vLLM's transformers backend);
- model.safetensors: the state dict under the shared parameter names (a tied head is stored once,
  as `model.embed_tokens.weight`);
- generation_config.json: stop on <|assistant_end|> or <|bos|>;
- the tokenizer (tokenizer.json + tokenizer_config.json with the chat template), when given.
Each file is written to a temporary name and renamed, so a crash never leaves a half-written file.

`load_hf(dir)` loads any such directory (or any plain HF causal LM directory) with transformers.

Not covered: sharded checkpoints (a small model fits one file) and converting foreign architectures
to the native GPT.
"""

from __future__ import annotations

import json
from pathlib import Path

from crucible.io import atomic_write, replacing

REMOTE_DIR = Path(__file__).parent / "remote"
REMOTE_FILES = ("configuration_crucible.py", "modeling_crucible.py")
MODEL_TYPE = "crucible_gpt"
AUTO_MAP = {
    "AutoConfig": "configuration_crucible.CrucibleConfig",
    "AutoModel": "modeling_crucible.CrucibleModel",
    "AutoModelForCausalLM": "modeling_crucible.CrucibleForCausalLM",
}


def hf_config(model, tokenizer=None) -> dict:
    """config.json contents for a native GPT."""
    cfg = model.config
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    special = {}
    if tokenizer is not None:
        special = dict(bos_token_id=tokenizer.bos_id, eos_token_id=tokenizer.special_id("assistant_end"),
                       pad_token_id=tokenizer.bos_id)
    return {
        "model_type": MODEL_TYPE,
        "architectures": ["CrucibleForCausalLM"],
        "auto_map": AUTO_MAP,
        **cfg.to_dict(),
        "head_dim": cfg.head_dim,
        "intermediate_size": cfg.mlp_ratio * cfg.n_embd,
        "tie_word_embeddings": cfg.tie_embeddings,
        "dtype": dtype,
        **special,
    }


def save_checkpoint(model, dir, tokenizer=None) -> Path:
    from safetensors.torch import save_file

    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_embeddings:
        state.pop("lm_head.weight")
    with replacing(out / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    for name in REMOTE_FILES:
        atomic_write(out / name, (REMOTE_DIR / name).read_bytes())
    atomic_write(out / "config.json", (json.dumps(hf_config(model, tokenizer), indent=2) + "\n").encode())
    if tokenizer is not None:
        stops = [tokenizer.special_id("assistant_end"), tokenizer.bos_id]
        generation = {"bos_token_id": tokenizer.bos_id, "eos_token_id": stops, "pad_token_id": tokenizer.bos_id}
        atomic_write(out / "generation_config.json", (json.dumps(generation, indent=2) + "\n").encode())
        tokenizer.save(out)
    return out


def load_hf(dir, *, dtype=None, device=None, attn_implementation: str | None = None):
    """A transformers causal LM from `dir` (crucible checkpoint or any HF model directory), in eval mode."""
    from transformers import AutoModelForCausalLM

    kwargs = {"trust_remote_code": True}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForCausalLM.from_pretrained(str(dir), **kwargs)
    if device is not None:
        model = model.to(device)
    return model.eval()
