"""A tiny transformers model that has memorized a few texts: for tests and smoke runs, no downloads.

`build_tiny_hf_model(dir, texts, chats)` trains a byte-level BPE tokenizer (the `tokenizers`
library) on the texts, then a 2-layer `LlamaForCausalLM` on them until greedy decoding reproduces
each one from its start, and saves both (with a chat template) so `hf:DIR` loads it. A base text
is learnt as `<|bos|>text<|eos|>`; a chat as the template renders it, the reply ending in `<|end|>`.
It knows nothing else: prompt it with the start of a text it was taught.
"""

from __future__ import annotations

import json
from pathlib import Path

SPECIALS = ["<|bos|>", "<|eos|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def build_tiny_hf_model(out: str | Path, texts: list, chats: list[list[dict]] = (), *, steps: int = 250,
                        hidden: int = 96, seed: int = 0) -> Path:
    """`texts`: strings, or (prompt, completion) pairs tokenized apart, as a sampler will see them."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only fight over the cores
    pairs = [t if isinstance(t, tuple) else (t, "") for t in texts]
    rendered = [render_chat(c) for c in chats]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([a + b for a, b in pairs] + rendered, trainers.BpeTrainer(
        vocab_size=768, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|bos|>", eos_token="<|eos|>",
                                  pad_token="<|pad|>", additional_special_tokens=SPECIALS[3:])
    tok.chat_template = CHAT_TEMPLATE
    bos, eos, end = (tok.convert_tokens_to_ids(t) for t in ("<|bos|>", "<|eos|>", "<|end|>"))
    encode = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    sequences = [[bos] + encode(a) + encode(b) + [eos] for a, b in pairs]
    sequences += [encode(r) for r in rendered]

    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=4 * hidden,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=max(256, 2 * max(map(len, sequences))),
                         bos_token_id=bos, eos_token_id=[eos, end], pad_token_id=tok.pad_token_id,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    width = max(map(len, sequences))
    batch = torch.full((len(sequences), width), tok.pad_token_id)
    labels = torch.full((len(sequences), width), -100)
    for i, s in enumerate(sequences):
        batch[i, :len(s)] = torch.tensor(s)
        labels[i, :len(s)] = torch.tensor(s)
    mask = (labels != -100).long()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    model.train()
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - step / steps)
    for step in range(steps):
        loss = model(input_ids=batch, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        if loss.item() < 0.005:
            break
    model.eval()
    torch.set_num_threads(threads)
    model.generation_config = GenerationConfig(bos_token_id=bos, eos_token_id=[eos, end],
                                               pad_token_id=tok.pad_token_id)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "tiny.json").write_text(json.dumps({"final_loss": loss.item(), "steps": step + 1}) + "\n")
    return out


def render_chat(messages: list[dict]) -> str:
    return "".join(f"<|{m['role']}|>{m['content']}<|end|>" for m in messages)
