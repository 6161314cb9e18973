"""Checkpoints load in transformers (trust_remote_code) and compute what the native model computes."""

import json
import logging
import logging.handlers
import warnings

import pytest
import torch

from crucible import testing
from crucible.model import hf
from crucible.model.gpt import GPT

VARIANTS = {"plain": {}, "tied": {"tie_embeddings": True},
            "unet+ve": {"unet_skips": True, "value_embeds": True, "n_layer": 4}}



@pytest.fixture(scope="module")
def tok():
    return testing.tokenizer(384)


@pytest.fixture(scope="module", params=list(VARIANTS))
def checkpoint(request, tok, tmp_path_factory):
    model = testing.random_gpt(tok, seed=1, **VARIANTS[request.param])
    path = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(path, tok)
    return model, path


def test_checkpoint_files(checkpoint, tok):
    model, path = checkpoint
    config = json.loads((path / "config.json").read_text())
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_crucible.CrucibleForCausalLM"
    assert config["n_layer"] == model.config.n_layer and config["n_embd"] == 64
    assert config["eos_token_id"] == tok.special_id("assistant_end")
    from safetensors import safe_open
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert ("lm_head.weight" in keys) != model.config.tie_embeddings


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_native_and_hf_logits_agree(checkpoint, tok, attn):
    model, path = checkpoint
    hf_model = hf.load_hf(path, attn_implementation=attn)
    assert type(hf_model).__name__ == "CrucibleForCausalLM"
    assert hf_model.config.hidden_size == 64 and hf_model.config.final_logit_softcapping == model.config.softcap
    idx = torch.tensor([tok.encode("def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n")])
    with torch.no_grad():
        torch.testing.assert_close(hf_model(idx).logits, model(idx), atol=1e-5, rtol=1e-5)
        # labels: transformers shifts them; the native model takes targets already shifted
        hf_loss = hf_model(idx, labels=idx).loss
        native_loss = model(idx[:, :-1], idx[:, 1:])
    torch.testing.assert_close(hf_loss, native_loss, atol=1e-5, rtol=1e-5)


def test_hf_generate_matches_native_greedy(checkpoint, tok):
    model, path = checkpoint
    hf_model = hf.load_hf(path)
    prompt = torch.tensor([tok.encode("import os\n")])
    out = hf_model.generate(prompt, max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=tok.bos_id)
    x = prompt
    with torch.no_grad():
        for _ in range(12):
            x = torch.cat([x, model(x)[:, -1].argmax(-1, keepdim=True)], 1)
    assert out.tolist() == x.tolist()


def test_native_loads_what_hf_saves(checkpoint, tmp_path):
    """A checkpoint that went through transformers (e.g. after fine-tuning) loads natively."""
    model, path = checkpoint
    hf_model = hf.load_hf(path)
    hf_model.save_pretrained(str(tmp_path))
    again = GPT.from_pretrained(tmp_path)
    idx = torch.randint(0, 384, (1, 10))
    with torch.no_grad():
        torch.testing.assert_close(again(idx), model(idx))


def test_peft_lora_wraps_the_model(checkpoint):
    from peft import LoraConfig, get_peft_model
    _, path = checkpoint
    peft_model = get_peft_model(hf.load_hf(path), LoraConfig(r=4, target_modules=["q_proj", "v_proj", "up_proj"]))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert 0 < trainable < sum(p.numel() for p in peft_model.parameters()) // 4
    loss = peft_model(input_ids=torch.randint(0, 384, (2, 8)), labels=torch.randint(0, 384, (2, 8))).loss
    loss.backward()
    assert all(p.grad is not None for p in peft_model.parameters() if p.requires_grad)


def test_tokenizer_travels_with_checkpoint(checkpoint, tok):
    from transformers import AutoTokenizer
    _, path = checkpoint
    auto = AutoTokenizer.from_pretrained(str(path))
    text = "for i in range(10):\n    print(i)\n"
    assert auto.encode(text, add_special_tokens=False) == tok.encode(text)


def test_tiny_llama(tok, tmp_path):
    testing.save_tiny_llama(tmp_path, tok)
    model = hf.load_hf(tmp_path)
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.num_hidden_layers == 2
    out = model.generate(torch.tensor([tok.encode("x = ")]), max_new_tokens=5, do_sample=False,
                         eos_token_id=None, pad_token_id=tok.bos_id)
    assert out.shape == (1, len(tok.encode("x = ")) + 5)
    assert (tmp_path / "tokenizer.json").is_file()


def test_gradient_checkpointing_gives_the_same_gradients(checkpoint):
    """TRL turns gradient checkpointing on by default; it must work and change nothing."""
    _, path = checkpoint
    idx = torch.randint(0, 384, (2, 12))
    grads = []
    for checkpointing in (False, True):
        model = hf.load_hf(path).train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        model(input_ids=idx, labels=idx).loss.backward()
        grads.append(model.model.layers[0].self_attn.q_proj.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_either_cache_argument_name_decodes_like_a_full_forward(checkpoint):
    """transformers 5.24 renamed the cache argument `past_key_values` to `cache`; callers of either era work."""
    from transformers import DynamicCache
    _, path = checkpoint
    hf_model = hf.load_hf(path)
    idx = torch.randint(0, 384, (1, 9))
    with torch.no_grad():
        full = hf_model(idx).logits[:, -1]
        for name in ("cache", "past_key_values"):
            cache = DynamicCache(config=hf_model.config)
            hf_model(idx[:, :-1], use_cache=True, **{name: cache})
            assert cache.get_seq_length() == 8
            last = hf_model(idx[:, -1:], use_cache=True, **{name: cache}).logits[:, -1]
            torch.testing.assert_close(last, full, atol=1e-5, rtol=1e-5)


def test_remote_code_calls_no_deprecated_transformers_api(checkpoint, tok):
    """Loading, a loss and `generate` warn about nothing, with the installed transformers: a deprecation there
    (like 5.24's `past_key_values` -> `cache`) is the sign the remote code must follow a rename."""
    from transformers.utils import logging as hf_logging
    _, path = checkpoint
    hf_logging.warning_once.cache_clear()  # else a warning another test triggered first would not show again
    logged = logging.handlers.BufferingHandler(capacity=10_000)
    hf_logging.get_logger().addHandler(logged)
    idx = torch.tensor([tok.encode("import os\n")])
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hf_model = hf.load_hf(path)
            with torch.no_grad():
                hf_model(idx, labels=idx)
            hf_model.generate(idx, max_new_tokens=4, do_sample=False, eos_token_id=None, pad_token_id=tok.bos_id)
    finally:
        hf_logging.get_logger().removeHandler(logged)
    deprecations = [str(w.message) for w in caught if issubclass(w.category, (DeprecationWarning, FutureWarning))]
    assert deprecations == []
    assert [r.getMessage() for r in logged.buffer if "deprecat" in r.getMessage().lower()] == []
