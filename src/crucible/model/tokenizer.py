"""Byte-level BPE tokenizer (Hugging Face `tokenizers`), with the chat special tokens reserved.

Why a wrapper: the library does the training and the encoding (fast, in Rust); this file fixes the
choices that matter for a code model and for bits-per-byte, and keeps them in one place:

- a GPT-4-style split regex (numbers in groups of at most 2 digits, runs of whitespace kept whole, so
  indentation becomes few tokens), then byte-level mapping: every byte string is encodable, no <unk>;
- the nine SPECIAL_TOKENS get ids 0..8 and are never produced by `encode(text)`: a user or a file
  that contains the text "<|python_start|>" is encoded as ordinary bytes, so data cannot forge
  control tokens. Only `special_id(name)` gives their ids (the chat renderer and engine use it);
- `token_bytes()`: how many UTF-8 bytes each token stands for (0 for specials), the denominator of
  bits-per-byte, which, unlike loss per token, compares models with different vocabularies.

`save(dir)` writes `tokenizer.json` (loadable by `tokenizers.Tokenizer.from_file`) and a
`tokenizer_config.json` with a chat template, so `transformers.AutoTokenizer.from_pretrained(dir)`
(and vLLM) load the same tokenizer.

Not covered: normalisation (none: code is whitespace- and case-sensitive) and byte fallback for a
non-byte-level model (not needed: byte-level covers every input).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tokenizers import Regex, decoders, models, pre_tokenizers, trainers
from tokenizers import Tokenizer as HFTokenizer

SPECIAL_TOKENS = ["<|bos|>", "<|user_start|>", "<|user_end|>", "<|assistant_start|>", "<|assistant_end|>",
                  "<|python_start|>", "<|python_end|>", "<|output_start|>", "<|output_end|>"]
# GPT-4's pattern with \p{N}{1,3} narrowed to {1,2} (as nanochat: fewer wasted merges on numbers
# in a small vocabulary).
SPLIT_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
                 r"""|\s*[\r\n]|\s+(?!\S)|\s+""")
FILE_NAME = "tokenizer.json"
# The format crucible.model.chat renders, with every OpenAI role folded as `chat.fold_messages` does
# (system/developer into the next user turn, tool results as user text, tool calls as <tool_call>
# text, consecutive roles merged); tests check the two agree token for token.
CHAT_TEMPLATE = (
    "{{- '<|bos|>' -}}{%- set st = namespace(sys='', open='') -%}"
    "{%- if tools -%}{%- set st.sys = '# Tools\\n\\nYou may call one or more functions to assist with the user query. "
    "The function signatures are within <tools></tools>:\\n<tools>\\n' -%}"
    "{%- for t in tools -%}{%- set st.sys = st.sys + (t | tojson) + '\\n' -%}{%- endfor -%}"
    "{%- set st.sys = st.sys + '</tools>\\n\\nFor each call, write <tool_call>\\n"
    "{\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call>' -%}{%- endif -%}"
    "{%- for m in messages -%}"
    "{%- if m['content'] is string -%}{%- set c = m['content'] -%}"
    "{%- elif m['content'] is none or m['content'] is not defined -%}{%- set c = '' -%}"
    "{%- else -%}{%- set c = m['content'] | map(attribute='text') | join('') -%}{%- endif -%}"
    "{%- if m['role'] in ['system', 'developer'] -%}{%- set st.sys = st.sys + ('\\n\\n' if st.sys else '') + c -%}"
    "{%- elif m['role'] in ['user', 'tool'] -%}"
    "{%- if m['role'] == 'tool' -%}{%- set c = '<tool_response>\\n' + c + '\\n</tool_response>' -%}{%- endif -%}"
    "{%- if st.open == 'assistant' -%}{{- '<|assistant_end|>' -}}{%- endif -%}"
    "{%- if st.open == 'user' -%}{{- '\\n\\n' -}}{%- else -%}{{- '<|user_start|>' -}}{%- endif -%}"
    "{{- st.sys + ('\\n\\n' if st.sys and c else '') + c -}}{%- set st.sys = '' -%}{%- set st.open = 'user' -%}"
    "{%- elif m['role'] == 'assistant' -%}"
    "{%- if st.open == '' -%}{{- '<|user_start|>' + st.sys -}}{%- set st.sys = '' -%}{%- set st.open = 'user' -%}{%- endif -%}"
    "{%- if st.open == 'user' -%}{{- '<|user_end|><|assistant_start|>' -}}{%- endif -%}{%- set st.open = 'assistant' -%}"
    "{%- if m['content'] is string or m['content'] is none or m['content'] is not defined -%}{{- c -}}"
    "{%- else -%}{%- for p in m['content'] -%}"
    "{%- if p['type'] == 'python' -%}{{- '<|python_start|>' + p['text'] + '<|python_end|>' -}}"
    "{%- elif p['type'] == 'python_output' -%}{{- '<|output_start|>' + p['text'] + '<|output_end|>' -}}"
    "{%- else -%}{{- p['text'] -}}{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{%- for call in m['tool_calls'] or [] -%}{%- set f = call['function'] if call['function'] is defined else call -%}"
    "{{- '<tool_call>\\n{\\\"name\\\": ' + (f['name'] | tojson) + ', \\\"arguments\\\": ' + "
    "(f['arguments'] if f['arguments'] is string else (f['arguments'] | tojson)) + '}\\n</tool_call>' -}}"
    "{%- endfor -%}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if st.sys -%}{%- if st.open == 'assistant' -%}{{- '<|assistant_end|><|user_start|>' -}}"
    "{%- elif st.open == 'user' -%}{{- '\\n\\n' -}}{%- else -%}{{- '<|user_start|>' -}}{%- endif -%}"
    "{{- st.sys -}}{%- set st.open = 'user' -%}{%- endif -%}"
    "{%- if st.open == 'assistant' -%}{{- '<|assistant_end|>' -}}{%- elif st.open == 'user' -%}{{- '<|user_end|>' -}}{%- endif -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant_start|>' -}}{%- endif -%}"
)


def _byte_decoder() -> dict[str, int]:
    """Inverse of the byte-level alphabet: printable stand-in character -> the byte it stands for."""
    return {ch: b for b, ch in _bytes_to_unicode().items()}


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2's table (the one tokenizers' ByteLevel uses): printable bytes map to themselves, the
    # rest to code points from 256 up, in order.
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class Tokenizer:
    def __init__(self, hf: HFTokenizer):
        self._hf = hf
        missing = [t for t in SPECIAL_TOKENS if hf.token_to_id(t) is None]
        if missing:
            raise ValueError(f"tokenizer lacks special tokens {missing}")
        self._special_ids = {t: hf.token_to_id(t) for t in SPECIAL_TOKENS}
        self._hf.encode_special_tokens = True  # specials in text are plain text (see module doc)
        self._token_bytes = None

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, *, show_progress: bool = False) -> Tokenizer:
        minimum = 256 + len(SPECIAL_TOKENS)
        if vocab_size < minimum:
            raise ValueError(f"vocab_size must be at least {minimum} (256 bytes + {len(SPECIAL_TOKENS)} specials)")
        hf = HFTokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, min_frequency=2,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=show_progress)
        hf.train_from_iterator(texts, trainer)
        return cls(hf)

    @classmethod
    def load(cls, path_or_dir) -> Tokenizer:
        path = Path(path_or_dir)
        if path.is_dir():
            path = path / FILE_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no tokenizer at {path}")
        return cls(HFTokenizer.from_file(str(path)))

    def save(self, dir) -> None:
        out = Path(dir)
        out.mkdir(parents=True, exist_ok=True)
        self._hf.encode_special_tokens = False  # as the file's readers (AutoTokenizer, vLLM) expect
        try:
            self._hf.save(str(out / (FILE_NAME + ".tmp")))
        finally:
            self._hf.encode_special_tokens = True
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": "<|bos|>", "eos_token": "<|assistant_end|>", "pad_token": "<|bos|>",
            "add_bos_token": False, "add_eos_token": False, "clean_up_tokenization_spaces": False,
            "model_max_length": 1 << 30, "chat_template": CHAT_TEMPLATE,
        }
        (out / "tokenizer_config.json.tmp").write_text(json.dumps(config, indent=2) + "\n")
        for name in (FILE_NAME, "tokenizer_config.json"):   # both written: now put them in place
            os.replace(out / (name + ".tmp"), out / name)

    # -- using -----------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self._hf.get_vocab_size(with_added_tokens=True)

    @property
    def bos_id(self) -> int:
        return self._special_ids["<|bos|>"]

    def special_id(self, name: str) -> int:
        """Id of a special token, by its full text ("<|user_start|>") or short name ("user_start")."""
        key = name if name.startswith("<|") else f"<|{name}|>"
        try:
            return self._special_ids[key]
        except KeyError:
            raise KeyError(f"unknown special token {name!r}; known: {SPECIAL_TOKENS}") from None

    @property
    def special_ids(self) -> set[int]:
        return set(self._special_ids.values())

    def encode(self, text: str) -> list[int]:
        return self._hf.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._hf.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids) -> str:
        """Text of `ids`; special tokens are written out as their text ("<|python_start|>")."""
        return self._hf.decode([int(i) for i in ids], skip_special_tokens=False)

    def id_to_token(self, i: int) -> str:
        return self._hf.id_to_token(int(i))

    def token_bytes(self) -> np.ndarray:
        """UTF-8 byte length of every token id (0 for special tokens), int32 [vocab_size]."""
        if self._token_bytes is None:
            decoder = _byte_decoder()
            special = self.special_ids
            lengths = np.zeros(self.vocab_size, dtype=np.int32)
            for token, i in self._hf.get_vocab(with_added_tokens=True).items():
                if i not in special:
                    lengths[i] = len(bytes(decoder[c] for c in token))
            self._token_bytes = lengths
        return self._token_bytes.copy()

    def __len__(self) -> int:
        return self.vocab_size
