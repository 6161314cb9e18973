"""Tiny transformers models for tests and smoke runs, no downloads: one that has memorized a few
texts, and a random one with crucible's tokenizer.

`build_tiny_hf_model(dir, texts, chats)` trains a byte-level BPE tokenizer (the `tokenizers`
library) on the texts, then a 2-layer `LlamaForCausalLM` on them until greedy decoding reproduces
each continuation exactly (checked teacher-forced: every target token is the argmax), and saves both (with a chat template) so `hf:DIR` loads it. A base text
is learnt as `<|bos|>text<|eos|>`; a chat as the template renders it, the reply ending in `<|end|>`;
the loss is on the continuation (the reply) only.
It knows nothing else: prompt it with the start of a text it was taught.

`demo_model()` is the one tests and docs use: three short HumanEval problems (53, 23, 45) with
their canonical solutions, a toy task whose memorized continuation runs past a stop sequence,
a chat reply with prose around a fenced block, and a small talk exchange. It is built once
(about 10 s of CPU) into a cache directory keyed by what goes into it.

`save_tiny_llama(dir, tokenizer)` writes a randomly initialised 2-layer `LlamaForCausalLM` with
crucible's tokenizer: a stand-in "foreign" model for tests of code that must work with any HF
checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

SPECIALS = ["<|bos|>", "<|eos|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def build_tiny_hf_model(out: str | Path, texts: list, chats: list[list[dict]] = (), *, steps: int = 250,
                        hidden: int = 96, seed: int = 0) -> Path:
    """`texts`: strings, or (prompt, completion) pairs tokenized apart, as a sampler will see them."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    import transformers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    transformers.utils.logging.disable_progress_bar()

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
    bpe.post_processor = processors.TemplateProcessing(  # a base prompt starts with <|bos|>, as in training
        single="<|bos|> $A", special_tokens=[("<|bos|>", bpe.token_to_id("<|bos|>"))])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|bos|>", eos_token="<|eos|>",
                                  pad_token="<|pad|>", additional_special_tokens=SPECIALS[3:])
    tok.chat_template = CHAT_TEMPLATE
    bos, eos, end = (tok.convert_tokens_to_ids(t) for t in ("<|bos|>", "<|eos|>", "<|end|>"))
    encode = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    # (context, target) token lists: the loss is on the target only, which is all greedy decoding needs
    examples = [([bos] + encode(a), encode(b) + [eos]) for a, b in pairs]
    for chat, text in zip(chats, rendered):
        reply = f"{chat[-1]['content']}<|end|>"
        examples.append((encode(text[:-len(reply)]), encode(reply)))
    sequences = [a + b for a, b in examples]

    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=4 * hidden,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048,
                         bos_token_id=bos, eos_token_id=[eos, end], pad_token_id=tok.pad_token_id,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    width = max(map(len, sequences))
    batch = torch.full((len(sequences), width), tok.pad_token_id)
    labels = torch.full((len(sequences), width), -100)
    for i, s in enumerate(sequences):
        batch[i, :len(s)] = torch.tensor(s)
        labels[i, len(examples[i][0]):len(s)] = torch.tensor(examples[i][1])
    mask = (batch != tok.pad_token_id).long()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    model.train()
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - step / steps)
    for step in range(steps):
        result = model(input_ids=batch, attention_mask=mask, labels=labels)
        # Every target token is the argmax after its exact prefix: greedy decoding reproduces them all.
        predicted = result.logits[:, :-1].argmax(-1)
        target = labels[:, 1:]
        if bool(((predicted == target) | (target == -100)).all()) and result.loss.item() < 0.05:
            break
        opt.zero_grad()
        result.loss.backward()
        opt.step()
        schedule.step()
    loss = result.loss
    model.eval()
    torch.set_num_threads(threads)
    model.generation_config = GenerationConfig(bos_token_id=bos, eos_token_id=[eos, end],
                                               pad_token_id=tok.pad_token_id)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "tiny.json").write_text(json.dumps({"final_loss": loss.item(), "steps": step + 1,
                                               "memorized": step + 1 < steps}) + "\n")
    return out


def render_chat(messages: list[dict]) -> str:
    return "".join(f"<|{m['role']}|>{m['content']}<|end|>" for m in messages)


DEMO_HUMANEVAL = ("HumanEval/53", "HumanEval/23", "HumanEval/45")
TOY_TASK = {"task_id": "toy/add_one", "prompt": 'def add_one(x):\n    """Return x plus one."""\n',
            "language": "python", "entry_point": "add_one", "stop": ["\ndef ", "\nclass ", "\nif __name__"],
            "test": "assert add_one(1) == 2 and add_one(-3) == -2\n"}
TOY_CONTINUATION = "    return x + 1\n\n\ndef unused():\n    pass\n"  # cut at "\ndef " when sampled
TOY_CHAT_REPLY = "Sure! Here it is:\n```python\ndef add_one(x):\n    return x + 1\n```\nIt adds one."
SMALL_TALK = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "2+2 is 4."}]


def demo_model(cache_dir: str | Path | None = None) -> Path:
    """The tiny demo model (see the module docstring), built on first use."""
    import torch
    import transformers

    from crucible.tasks.common import Task
    from crucible.tasks.humaneval import load_problems

    problems = load_problems()
    texts = [(problems[t]["prompt"], problems[t]["canonical_solution"]) for t in DEMO_HUMANEVAL]
    texts.append((TOY_TASK["prompt"], TOY_CONTINUATION))
    chats = [Task(**TOY_TASK).chat_messages() + [{"role": "assistant", "content": TOY_CHAT_REPLY}], SMALL_TALK]
    key = hashlib.sha256(json.dumps([texts, chats, torch.__version__, transformers.__version__,
                                     Path(__file__).read_text()]).encode()).hexdigest()[:16]
    root = Path(cache_dir or os.environ.get("CRUCIBLE_TINY_CACHE") or tempfile.gettempdir())
    final = root / f"crucible-tiny-hf-{key}"
    if (final / "tiny.json").exists():
        return final
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=final.name + ".", dir=root))
    build_tiny_hf_model(work, texts, chats, steps=300)
    try:
        os.rename(work, final)  # atomic; another process may have won the race
    except OSError:
        shutil.rmtree(work, ignore_errors=True)
    return final


def save_tiny_llama(dir, tokenizer, *, seed: int = 0, n_layer: int = 2, hidden: int = 64):
    """A randomly initialised 2-layer LlamaForCausalLM with crucible's tokenizer, saved to `dir`."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=n_layer, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, bos_token_id=tokenizer.bos_id,
                         eos_token_id=tokenizer.special_id("assistant_end"), pad_token_id=tokenizer.bos_id,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_id, pad_token_id=tokenizer.bos_id,
                                               eos_token_id=[tokenizer.special_id("assistant_end"), tokenizer.bos_id])
    out = Path(dir)
    model.save_pretrained(str(out))
    tokenizer.save(out)
    return out
