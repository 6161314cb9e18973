"""Native GPT: the depth dial, shapes, loss, KV cache equivalence, initialisation, checkpoints."""

import pytest
import torch
import torch.nn.functional as F

from crucible import testing
from crucible.model.gpt import GPT, GPTConfig, KVCache, NotACheckpoint

VARIANTS = {"plain": {}, "tied": {"tie_embeddings": True},
            "unet+ve": {"unet_skips": True, "value_embeds": True, "n_layer": 4}}



@pytest.fixture(scope="module", params=list(VARIANTS))
def model(request):
    return testing.random_gpt(vocab_size=320, **VARIANTS[request.param])


def test_from_depth_derives_the_shape():
    c = GPTConfig.from_depth(12, 32768)
    assert (c.n_embd, c.n_head, c.n_kv_head, c.head_dim, c.n_layer) == (768, 6, 3, 128, 12)
    c = GPTConfig.from_depth(3, 1000)                 # 192 rounds up to whole 128-wide heads
    assert (c.n_embd, c.n_head, c.n_kv_head) == (256, 2, 1)
    c = GPTConfig.from_depth(20, 65536, seq_len=2048, softcap=0)
    assert (c.n_embd, c.n_head, c.n_kv_head, c.seq_len, c.softcap) == (1280, 10, 5, 2048, 0)
    with pytest.raises(ValueError):
        GPTConfig.from_depth(2, 300, n_embd=64, n_head=4, n_kv_head=3)
    with pytest.raises(ValueError):
        GPTConfig.from_depth(0, 300)


def test_param_count_grows_with_depth_and_tying_saves_a_matrix():
    small, big = GPT(GPTConfig.from_depth(1, 512)), GPT(GPTConfig.from_depth(2, 512))
    assert big.num_params() > small.num_params() > 0
    untied = GPT(GPTConfig.from_depth(1, 512))
    tied = GPT(GPTConfig.from_depth(1, 512, tie_embeddings=True))
    assert untied.num_params() - tied.num_params() == 512 * 128
    assert tied.lm_head.weight is tied.model.embed_tokens.weight
    assert "M parameters" in big.summary()


def test_logits_shape_and_softcap(model):
    idx = torch.randint(0, 320, (2, 17))
    logits = model(idx)
    assert logits.shape == (2, 17, 320) and logits.dtype == torch.float32
    assert logits.abs().max() <= model.config.softcap
    h = model.hidden(idx)
    manual = model.config.softcap * torch.tanh(F.linear(h, model.lm_head.weight).float() / model.config.softcap)
    torch.testing.assert_close(manual, logits)


def test_loss_ignores_minus_one(model):
    idx = torch.randint(0, 320, (2, 12))
    targets = torch.randint(0, 320, (2, 12))
    targets[0, :5] = -1
    loss = model(idx, targets)
    logits = model(idx)
    keep = targets != -1
    torch.testing.assert_close(loss, F.cross_entropy(logits[keep], targets[keep]))


def test_causal(model):
    idx = torch.randint(0, 320, (1, 16))
    changed = idx.clone()
    changed[0, 10:] = (changed[0, 10:] + 1) % 320
    torch.testing.assert_close(model(idx)[:, :10], model(changed)[:, :10])
    assert not torch.allclose(model(idx)[:, 10:], model(changed)[:, 10:])


def test_kv_cache_matches_full_forward(model):
    idx = torch.randint(0, 320, (3, 20))
    full = model(idx)
    cache = KVCache(model.config, 3, 24)
    parts = [model(idx[:, :9], kv_cache=cache), model(idx[:, 9:14], kv_cache=cache)]
    parts += [model(idx[:, t:t + 1], kv_cache=cache) for t in range(14, 20)]
    assert cache.pos == 20
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=2e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="KV cache full"):
        model(idx[:, :5], kv_cache=cache)


def test_padded_rows_match_unpadded(model):
    """Rows that start later in the cache (left padding) compute what they would alone."""
    a, b = torch.randint(0, 320, (1, 12)), torch.randint(0, 320, (1, 7))
    pad = torch.tensor([0, 5])
    cache = KVCache(model.config, 2, 16, pad=pad)
    # write each prompt's keys/values right-aligned, as the engine does
    for row, prompt in ((0, a), (1, b)):
        single = KVCache(model.config, 1, 12)
        model(prompt, kv_cache=single)
        for layer in range(model.config.n_layer):
            cache.k[layer][row, :, 12 - prompt.size(1):12] = single.k[layer][0, :, :prompt.size(1)]
            cache.v[layer][row, :, 12 - prompt.size(1):12] = single.v[layer][0, :, :prompt.size(1)]
    cache.pos = 12
    nxt = torch.randint(0, 320, (2, 1))
    out = model(nxt, kv_cache=cache)[:, -1]
    torch.testing.assert_close(out[0], model(torch.cat([a, nxt[:1]], 1))[0, -1], atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(out[1], model(torch.cat([b, nxt[1:]], 1))[0, -1], atol=2e-5, rtol=1e-4)


def test_fresh_model_is_a_bigram_and_every_parameter_learns():
    """Zero-initialised output projections: at init each block is the identity, so a position's
    logits depend on its own token only; yet one backward step reaches every parameter."""
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_depth(4, 320, n_embd=64, n_head=4, n_kv_head=2, unet_skips=True, value_embeds=True))
    x = torch.randint(0, 320, (1, 10))
    y = x.clone()
    y[0, :9] = (y[0, :9] + 7) % 320
    torch.testing.assert_close(model(x)[0, 9], model(y)[0, 9])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):  # value tables see gradients once o_proj is nonzero
        opt.zero_grad()
        model(x, torch.randint(0, 320, (1, 10))).backward()
        opt.step()
    frozen = [n for n, p in model.named_parameters() if torch.equal(p, before[n])]
    assert not frozen


def test_param_groups_partition(model):
    groups = model.param_groups()
    ids = [id(p) for g in groups.values() for p in g]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert groups["matrices"] and all(p.ndim == 2 for p in groups["matrices"])


def test_save_and_load(model, tmp_path):
    tok = testing.tokenizer(320)
    model.save_pretrained(tmp_path, tok)
    again = GPT.from_pretrained(tmp_path)
    assert again.config == model.config
    idx = torch.randint(0, 320, (2, 9))
    torch.testing.assert_close(again(idx), model(idx), atol=0, rtol=0)
    assert (tmp_path / "tokenizer.json").is_file() and (tmp_path / "modeling_crucible.py").is_file()
    assert not list(tmp_path.glob("*.tmp"))


def test_load_errors(tmp_path):
    with pytest.raises(NotACheckpoint, match="config.json"):
        GPT.from_pretrained(tmp_path)


def test_decoding_path_matches_and_never_touches_training(model):
    idx = torch.randint(0, 320, (2, 11))
    with torch.no_grad():
        plain = model(idx)
        with model.decoding():
            fused = model(idx)
    torch.testing.assert_close(fused, plain, atol=2e-5, rtol=1e-4)
    with model.decoding():              # gradients on: the ordinary path, weights get gradients
        model(idx, idx).backward()
    assert model.model.layers[0].self_attn.q_proj.weight.grad is not None
    model.zero_grad(set_to_none=True)
    assert not any(b.self_attn.fuse_qkv for b in model.model.layers)


def test_training_forward_compiles_without_graph_breaks():
    model = testing.random_gpt(vocab_size=320, unet_skips=True, value_embeds=True, n_layer=4).train()
    idx = torch.randint(0, 320, (2, 16))
    explained = torch._dynamo.explain(model)(idx, idx)
    assert explained.graph_break_count == 0, [b.reason for b in explained.break_reasons]
