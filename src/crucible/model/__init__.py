"""crucible's own models: tokenizer, native GPT, Hugging Face interop, inference engine, chat rendering.

- `tokenizer.Tokenizer`: byte-level BPE with the chat special tokens; bytes per token for bits/byte.
- `gpt.GPT` / `gpt.GPTConfig.from_depth`: the native model; `GPT.save_pretrained` writes checkpoints
  that transformers loads with `trust_remote_code=True` (`hf.py`, `remote/`).
- `engine.Engine`: KV-cache sampling (n samples share one prefill), stop sequences, tool use.
- `chat.render_conversation`: a conversation -> (token ids, loss mask) for supervised fine-tuning.

Submodules are imported explicitly (`from crucible.model.gpt import GPT`): importing this package
loads neither torch nor transformers.
"""
