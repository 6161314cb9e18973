"""Hugging Face remote code for crucible checkpoints: copied next to `config.json` by `hf.save_checkpoint`.

These two files must stay self-contained (torch + transformers only, no `crucible` import): whoever
loads a checkpoint with `trust_remote_code=True` (transformers, PEFT, TRL, vLLM) may not have
crucible installed.
"""
