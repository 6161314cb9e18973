"""Post-training: make a model better at code with SFT, DPO and GRPO whose rewards come from the sandbox.

One file per role: data.py (readers, validation, mixing), render.py (ids + loss mask, native and
HF, prefix-stability check), pack.py (best-fit-decreasing rows with document masking), filters.py
(`crucible data filter`), policy.py (the model behind one interface: native or HF, full or LoRA),
losses.py (SFT/DPO/GRPO objectives), rollout.py and rewards.py (GRPO sampling and sandboxed
rewards), config.py (one config per method), run.py (a run on the shared loop,
crucible.train.loop: directory, log, AdamW, resume, export), and the recipes sft.py, dpo.py,
grpo.py behind `crucible sft|dpo|grpo`.
See docs/posttrain.md.
"""
