"""Post-training data: readers, mixing, rendering masks (native and HF), packing, loss normalisation."""

import json

import pytest
import torch

from crucible.testing import random_gpt, tokenizer
from crucible.posttrain import pack
from crucible.posttrain.data import DataError, Example, load_mixture, mix, parse_data_arg
from crucible.posttrain.render import HFRenderer, NativeRenderer, TemplateError, show, show_html

TOK = tokenizer()
CHAT = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"},
                     {"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"},
                     {"role": "assistant", "content": "ciao"}], "instance_id": "x-1"}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def hf_tokenizer(tmp_path):
    from transformers import AutoTokenizer

    TOK.save(tmp_path / "tok")
    return AutoTokenizer.from_pretrained(str(tmp_path / "tok"))


def trained_text(renderer, ids, mask):
    return "".join(renderer.token_text(t) for t, m in zip(ids, mask) if m)


# -- reading and mixing ----------------------------------------------------------------------------

def test_a_bad_line_names_file_and_line(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text(json.dumps(CHAT) + "\n" + json.dumps({"messages": [{"role": "user", "content": "no answer"}]}) + "\n")
    with pytest.raises(DataError) as e:
        load_mixture([str(f)])
    assert f"{f}:2" in str(e.value)


def test_extra_keys_ride_along_and_prompt_completion_reads(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", [CHAT, {"prompt": "def f():", "completion": " return 1", "src": "s"}])
    examples, _ = load_mixture([str(f)])
    by_kind = {e.messages is None: e for e in examples}
    assert by_kind[False].extra["instance_id"] == "x-1"
    assert by_kind[True].completion == " return 1"
    assert by_kind[True].extra["src"] == "s"


def test_parquet_conversations_read_like_jsonl(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([CHAT, CHAT]), tmp_path / "d.parquet")
    examples, _ = load_mixture([str(tmp_path / "d.parquet")])
    assert len(examples) == 2
    assert examples[0].messages[-1]["content"] == "ciao"


def test_weights_upsample_and_downsample():
    a, b = [("a", i) for i in range(10)], [("b", i) for i in range(10)]
    mixed = mix([(a, 2.0), (b, 0.5)], seed=3)
    assert sum(1 for x in mixed if x[0] == "a") == 20
    assert sum(1 for x in mixed if x[0] == "b") == 5
    assert parse_data_arg("x.jsonl:3") == ("x.jsonl", 3.0)
    assert parse_data_arg("dir/x.jsonl") == ("dir/x.jsonl", 1.0)


def test_validation_records_never_appear_in_training(tmp_path):
    rows = [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(40)]
    f = write_jsonl(tmp_path / "d.jsonl", rows)
    train, val = load_mixture([f"{f}:3"], val_fraction=0.1, seed=1)
    assert len(val) == 4
    assert not {e.prompt for e in val} & {e.prompt for e in train}


# -- rendering --------------------------------------------------------------------------------------

def test_native_mask_trains_assistant_text_and_end_only():
    r = NativeRenderer(TOK)
    ids, mask = r.example(Example("t", messages=CHAT["messages"]))
    end = TOK.special_id("assistant_end")
    assert trained_text(r, ids, mask) == "hello<|assistant_end|>ciao<|assistant_end|>"
    assert [t for t, m in zip(ids, mask) if m].count(end) == 2


def test_native_tool_output_is_masked_and_code_trained():
    r = NativeRenderer(TOK)
    turn = [{"type": "python", "text": "print(2+2)"}, {"type": "python_output", "text": "4"},
            {"type": "text", "text": "four"}]
    ids, mask = r.example(Example("t", messages=[{"role": "user", "content": "2+2?"},
                                                 {"role": "assistant", "content": turn}]))
    text = trained_text(r, ids, mask)
    assert "print(2+2)" in text
    assert "<|output_start|>" not in text
    assert text.endswith("four<|assistant_end|>")


def test_completion_masks_the_prompt():
    r = NativeRenderer(TOK)
    ids, mask = r.example(Example("t", prompt="def f():", completion=" return 1"))
    assert trained_text(r, ids, mask) == " return 1<|assistant_end|>"
    assert ids[0] == TOK.bos_id


def test_hf_mask_from_prefixes_matches_the_native_mask(tmp_path):
    """crucible's saved chat template is the native format: the prefix-found mask must agree."""
    hf, native = HFRenderer(hf_tokenizer(tmp_path)), NativeRenderer(TOK)
    ex = Example("t", messages=CHAT["messages"])
    hf_ids, hf_mask = hf.example(ex)
    native_ids, native_mask = native.example(ex)
    assert hf_ids == native_ids
    assert hf_mask == native_mask


def test_a_prefix_unstable_template_is_refused(tmp_path):
    tok = hf_tokenizer(tmp_path)
    # like templates that drop earlier assistant turns' reasoning: only the last reply keeps its text
    tok.chat_template = ("{% for m in messages %}{% if m['role'] == 'user' %}<|user_start|>{{ m['content'] }}"
                         "<|user_end|>{% else %}<|assistant_start|>{% if loop.last %}{{ m['content'] }}{% endif %}"
                         "<|assistant_end|>{% endif %}{% endfor %}"
                         "{% if add_generation_prompt %}<|assistant_start|>{% endif %}")
    with pytest.raises(TemplateError) as e:
        HFRenderer(tok).example(Example("f.jsonl:7", messages=CHAT["messages"][1:]))
    assert "f.jsonl:7" in str(e.value)
    assert "prefix-stable" in str(e.value)


def test_show_mask_marks_trained_spans(tmp_path):
    r = NativeRenderer(TOK)
    ids, mask = r.example(Example("t", prompt="q", completion="a"))
    assert show(r, ids, mask, color=False).endswith("[[a<|assistant_end|>]]")
    assert "\033[1;32m" in show(r, ids, mask, color=True)
    assert '<span class="t">a</span>' in show_html(r, [("t", ids, mask)])


# -- packing ----------------------------------------------------------------------------------------

def test_best_fit_decreasing_fills_rows_without_overflow():
    lengths = [7, 5, 4, 4, 3, 2, 2, 1, 9, 10]
    rows = pack.best_fit_decreasing(lengths, 10)
    assert sorted(i for r in rows for i in r) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in r) <= 10 for r in rows)
    assert len(rows) == 5                     # 47 tokens: 5 rows is the minimum


def test_over_long_documents_are_dropped_and_reported_not_cropped():
    p = pack.plan([5, 50, 6], 10, packed=True)
    assert p.dropped == [1]
    assert sorted(i for r in p.rows for i in r) == [0, 2]


def _docs(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    docs = []
    for _ in range(n):
        length = int(torch.randint(5, 30, (1,), generator=g))
        ids = torch.randint(10, TOK.vocab_size, (length,), generator=g).tolist()
        mask = [0] * (length // 3) + [1] * (length - length // 3)
        docs.append((ids, mask))
    return docs


def test_packed_rows_never_attend_across_documents_native():
    model = random_gpt(TOK)
    docs = _docs(6)
    packed = pack.collate([list(range(6))], docs, pad_id=0, width=160)
    with torch.no_grad():
        logits = model(packed.input_ids, segments=packed.segments)[0]
        start = 0
        for ids, _ in docs:
            alone = model(torch.tensor([ids[:-1]]))[0]
            assert torch.allclose(logits[start:start + len(ids) - 1], alone, atol=1e-5)
            start += len(ids) - 1


def test_packed_rows_never_attend_across_documents_hf(tmp_path):
    from crucible.model.hf import load_hf
    from crucible.testing import save_tiny_llama

    model = load_hf(save_tiny_llama(tmp_path / "llama", TOK), attn_implementation="sdpa")
    docs = _docs(5, seed=1)
    packed = pack.collate([list(range(5))], docs, pad_id=0, width=140)
    with torch.no_grad():
        logits = model(input_ids=packed.input_ids, position_ids=packed.position_ids, use_cache=False).logits[0]
        start = 0
        for ids, _ in docs:
            alone = model(input_ids=torch.tensor([ids[:-1]])).logits[0]
            assert torch.allclose(logits[start:start + len(ids) - 1], alone, atol=1e-5)
            start += len(ids) - 1


# -- loss normalisation -----------------------------------------------------------------------------

def test_one_micro_batch_of_8_equals_4_of_2():
    """Same gradient to 1e-6 through the shared loop's step, although the micro-batches hold
    different numbers of trained tokens (SGD with lr 1: the update is the gradient)."""
    from crucible.posttrain.config import SFTConfig
    from crucible.posttrain.policy import Policy
    from crucible.train import dist, loop

    docs = _docs(8, seed=2)
    updates = []
    for micro in (8, 2):
        model = random_gpt(TOK).train()
        before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        policy = Policy("native", model, TOK, "unused")
        cfg = SFTConfig(model="x", data=["x"], out="unused", batch_size=8, micro_batch=micro, max_steps=1, grad_clip=0.0)

        def loss_fn(m, batch):
            return policy.sft_loss_sum(batch, m) / batch.n_tokens

        state = loop.setup(cfg, model, loss_fn, dist.init("cpu"), write_model=None)
        state.optimizers = [torch.optim.SGD(model.parameters(), lr=1.0)]
        for g in state.optimizers[0].param_groups:
            g["base_lr"] = 1.0
        batches = [pack.collate([[i] for i in range(s, s + micro)], docs, pad_id=0) for s in range(0, 8, micro)]
        loop.train_step(state, [loop.MicroBatch(b, b.n_tokens, 0) for b in batches])
        updates.append(before - torch.cat([p.detach().flatten() for p in model.parameters()]))
    counts = [pack.collate([[i] for i in range(s, s + 2)], docs, pad_id=0).n_tokens for s in range(0, 8, 2)]
    assert len(set(counts)) > 1               # the case where averaging per micro-batch would differ
    assert updates[0].abs().max() > 0
    assert torch.allclose(updates[0], updates[1], atol=1e-6)


# -- the head runs on trained positions only ---------------------------------------------------------

def _full_logits(policy, batch, model):
    if policy.kind == "native":
        return model.logits(model.hidden(batch.input_ids, segments=batch.segments))
    return model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits


@pytest.mark.parametrize("kind", ["native", "hf", "hf-lora"])
def test_loss_and_logprobs_on_trained_positions_equal_the_full_logits(kind, tmp_path):
    """sft_loss_sum and token_logprobs gather the trained positions before the head; the loss, its
    gradient and the log-probs must equal those from the model's full logits (padded and packed)."""
    import torch.nn.functional as F

    from crucible.posttrain.policy import load_policy
    from crucible.testing import save_tiny_llama

    if kind == "native":
        random_gpt(TOK).save_pretrained(tmp_path / "m", TOK)
    else:
        save_tiny_llama(tmp_path / "m", TOK)
    policy = load_policy(f"{kind.split('-')[0]}:{tmp_path / 'm'}", lora_rank=4 if kind == "hf-lora" else 0, device="cpu")
    model = policy.model
    trainable = policy.trainable()
    if kind == "hf-lora":
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.5)                   # adapters now change the function
    docs = _docs(6, seed=3)
    padded, packed = pack.collate([[0], [1], [2]], docs, pad_id=0), pack.collate([[0, 1, 2], [3, 4], [5]], docs, pad_id=0)
    for batch in (padded, packed):
        model.zero_grad()
        ours = policy.sft_loss_sum(batch)
        ours.backward()
        grads = [p.grad.clone() for p in trainable]
        model.zero_grad()
        logits = _full_logits(policy, batch, model).float()
        full = F.cross_entropy(logits.view(-1, logits.size(-1)), batch.targets.view(-1), ignore_index=-1,
                               reduction="sum")
        full.backward()
        assert torch.allclose(ours, full, rtol=1e-5)
        assert all(torch.allclose(g, p.grad, atol=1e-5) for g, p in zip(grads, trainable))
        with torch.no_grad():
            lp = policy.token_logprobs(batch, temperature=0.7)
            expected = torch.log_softmax(_full_logits(policy, batch, model).float() / 0.7, -1)
            valid = batch.targets != -1
            expected = expected.gather(-1, torch.where(valid, batch.targets, 0)[..., None]).squeeze(-1) * valid
        assert torch.allclose(lp, expected, atol=1e-5)


def test_a_padded_row_reads_to_transformers_as_unpacked():
    """Padding continues the last document's positions: one document per row needs no mask."""
    from transformers.masking_utils import find_packed_sequence_indices

    docs = _docs(3, seed=4)
    padded = pack.collate([[0], [1], [2]], docs, pad_id=0)
    assert find_packed_sequence_indices(padded.position_ids) is None
    assert find_packed_sequence_indices(pack.collate([[0, 1], [2]], docs, pad_id=0).position_ids) is not None


def test_a_fused_adamw_step_refreshes_the_decode_cache():
    """Post-training's AdamW is fused, whose kernel leaves version counters alone; the loop bumps
    them, so the GPT's no-grad decode logits (what GRPO samples from) follow the update."""
    from crucible.posttrain.config import SFTConfig
    from crucible.posttrain.policy import Policy
    from crucible.posttrain.run import adamw
    from crucible.train import dist, loop

    model = random_gpt(TOK).train()
    policy = Policy("native", model, TOK, "unused")
    cfg = SFTConfig(model="x", data=["x"], out="unused", batch_size=2, max_steps=1, lr=1e-2)
    state = loop.setup(cfg, model, lambda m, b: policy.sft_loss_sum(b, m) / b.n_tokens, dist.init("cpu"),
                       write_model=None)
    state.optimizers = [adamw(model, cfg)]
    assert state.optimizers[0].param_groups[0]["fused"]
    h = torch.randn(3, model.config.n_embd)
    with torch.no_grad(), model.decoding():
        before = model.logits(h)                       # builds the decode cache
    batch = pack.collate([[0], [1]], _docs(2, seed=5), pad_id=0)
    loop.train_step(state, [loop.MicroBatch(batch, batch.n_tokens, 0)])
    with torch.no_grad(), model.decoding():
        after = model.logits(h)
    with torch.no_grad():
        exact = model.logits(h)                        # the plain head
    assert not torch.allclose(before, after)
    assert torch.allclose(after, exact, atol=1e-5)
