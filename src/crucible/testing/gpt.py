"""Tiny native GPTs and a tiny corpus for tests and benchmarks: nothing is downloaded.

- `corpus()`: a few Python standard-library modules' source (about 200 KB of real code), read from
  the running interpreter's own library;
- `tokenizer(vocab_size)`: a byte-level BPE trained on it (well under a second), cached per size;
- `random_gpt(tokenizer, ...)`: a 2-layer native GPT with every weight random (the zero-initialised
  outputs and gates get small noise too), so its outputs depend on every parameter: tests of
  equivalence (cache vs. no cache, native vs. Hugging Face) then mean something.

Everything is seeded: the same call gives the same model.
"""

from __future__ import annotations

import functools
import sysconfig
from pathlib import Path

CORPUS_MODULES = ("textwrap.py", "string.py", "json/__init__.py", "json/decoder.py", "json/encoder.py",
                  "difflib.py", "heapq.py", "bisect.py", "functools.py", "shlex.py")


def corpus() -> list[str]:
    lib = Path(sysconfig.get_paths()["stdlib"])
    texts = [(lib / name).read_text(encoding="utf-8") for name in CORPUS_MODULES if (lib / name).is_file()]
    if not texts:
        raise FileNotFoundError(f"no standard-library sources under {lib}")
    return texts


@functools.lru_cache(maxsize=4)
def tokenizer(vocab_size: int = 384):
    from crucible.model.tokenizer import Tokenizer
    return Tokenizer.train(corpus(), vocab_size)


def random_gpt(tokenizer=None, *, seed: int = 0, n_layer: int = 2, n_embd: int = 64, n_head: int = 4,
               n_kv_head: int = 2, noise: float = 0.05, **overrides):
    import torch

    from crucible.model.gpt import GPT, GPTConfig

    vocab = tokenizer.vocab_size if tokenizer is not None else overrides.pop("vocab_size", 384)
    config = GPTConfig.from_depth(n_layer, vocab, **{"seq_len": 256, "n_embd": n_embd, "n_head": n_head,
                                                     "n_kv_head": n_kv_head, **overrides})
    torch.manual_seed(seed)
    model = GPT(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(noise * torch.randn_like(p))
    return model.eval()


def bigram_gpt(tokenizer, transitions: dict[int, int], default: int):
    """A 1-layer native GPT that deterministically maps each token to the next: `transitions[t]`,
    or `default` for any other token. Greedy decoding then follows a script exactly, which tests of
    stopping, streaming and tool use need. How: width = vocab, one-hot embeddings, output
    projections left at zero (so the block is the identity, see gpt.py), and a head whose column t
    points at the successor of t."""
    import torch

    from crucible.model.gpt import GPT, GPTConfig

    V = tokenizer.vocab_size
    width = -(-V // 128) * 128
    model = GPT(GPTConfig(vocab_size=V, seq_len=256, n_layer=1, n_head=width // 128, n_kv_head=width // 128,
                          n_embd=width))
    with torch.no_grad():
        model.model.embed_tokens.weight.zero_()
        model.model.embed_tokens.weight[:, :V] = torch.eye(V)
        model.lm_head.weight.zero_()
        for t in range(V):
            model.lm_head.weight[transitions.get(t, default), t] = 1.0
    return model.eval()
