"""`hf:DIR`: a transformers causal LM and its tokenizer, sampled with `model.generate`.

The n samples of one call are one batch (the prompt repeated n times); `complete_many` decodes
several prompts as one left-padded batch (greedy evaluation uses it). Stop sequences are checked
on the decoded text after every step by a stopping criterion, per row, so a row stops as soon as it
writes one; the same check streams text to `on_text`. Chat prompts use the tokenizer's own chat
template (a model without one can only be prompted as a base model); a base prompt starts with
the tokenizer's BOS token when it has one, whether or not its encoder adds it (crucible's does not).
crucible checkpoints load through their remote code (trust_remote_code only for model_type
"crucible_gpt", whose code is ours). Seeds: `torch.manual_seed`
under the model lock, so a call with the same seed and inputs gives the same samples.
Not covered: batching several prompts into one call, quantized loading, multi-GPU.
"""

from __future__ import annotations

import threading

from crucible.generate.types import BackendError, GenParams, Generation, OnText, model_type, small_on_cpu
from crucible.sanitize import StopStream, truncate_at_stop


class HFBackend:
    concurrency = 1

    def __init__(self, path: str, *, spec: str = "", device: str | None = None):
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        transformers.utils.logging.disable_progress_bar()

        self.spec = spec or f"hf:{path}"
        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            # Remote code is trusted only for crucible's own checkpoints (the files are ours, copied in).
            trust = model_type(path) == "crucible_gpt"
            # trust_remote_code=False: the tokenizer needs no code, and leaving it unset makes
            # transformers ask "Do you wish to run the custom code? [y/N]" for a crucible checkpoint
            self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
            dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=trust)
            self.model = self.model.to(self.device).eval()
        except (OSError, ValueError) as e:
            raise BackendError(f"{self.spec}: cannot load a transformers model: {e}") from None
        small_on_cpu(self.model, self.device)
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = min(self.eos_ids) if self.eos_ids else 0
        self.lock = threading.Lock()

    def complete(self, prompt: str, n: int, params: GenParams, on_text: OnText | None = None) -> list[Generation]:
        return self.generate_ids([self.base_ids(prompt)] * n, params, on_text)

    def complete_many(self, prompts: list[str], params: GenParams) -> list[Generation]:
        """One sample for each prompt, left-padded into one batch (sampling uses this when greedy)."""
        return self.generate_ids([self.base_ids(p) for p in prompts], params, None)

    def chat(self, messages: list[dict], n: int, params: GenParams, on_text: OnText | None = None) -> list[Generation]:
        if not getattr(self.tokenizer, "chat_template", None):
            raise BackendError(f"{self.spec}: the tokenizer has no chat template; prompt it as a base model")
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self.generate_ids([ids] * n, params, on_text)

    def base_ids(self, prompt: str) -> list[int]:
        ids = self.tokenizer(prompt, add_special_tokens=True)["input_ids"]
        bos = self.tokenizer.bos_token_id
        if bos is not None and ids[:1] != [bos]:  # a tokenizer that does not add it (crucible's)
            ids = [bos] + ids
        return ids

    def generate_ids(self, prompts: list[list[int]], params: GenParams, on_text: OnText | None) -> list[Generation]:
        """One row per prompt, left-padded so that every row's new tokens start at the same column."""
        torch = self.torch
        sampling = params.temperature > 0
        options = dict(max_new_tokens=params.max_tokens, do_sample=sampling, pad_token_id=self.pad_id,
                       eos_token_id=sorted(self.eos_ids) or None)
        if sampling:
            options.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k)
        else:  # a model's generation_config may carry sampling defaults that greedy would warn about
            options.update(temperature=None, top_p=None, top_k=None)
        width = max(len(p) for p in prompts)
        watch = _StopWatch(self.tokenizer, width, len(prompts), params.stop, on_text)
        inputs = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        with self.lock, torch.inference_mode():
            if params.seed is not None:
                torch.manual_seed(params.seed)
            out = self.model.generate(inputs, attention_mask=mask, stopping_criteria=[watch], **options)
        gens = []
        for row, prompt in enumerate(prompts):
            new = out[row, width:].tolist()
            end = next((i for i, t in enumerate(new) if t in self.eos_ids), None)
            text = self.tokenizer.decode(new[:end], skip_special_tokens=True)
            text, hit = truncate_at_stop(text, params.stop)
            finished = hit or end is not None
            gens.append(Generation(text, "stop" if finished else "length", len(prompt),
                                   len(new) if end is None else end, new[:end] if end is not None else new))
            if on_text:
                rest = watch.streams[row].finish() if not watch.streams[row].stopped else ""
                if rest:
                    on_text(row, rest)
        return gens

    def close(self) -> None:
        self.model = None


class _StopWatch:
    """A stopping criterion (transformers calls it after each step): stops rows that wrote a stop
    sequence, and streams the text each row has written so far."""

    def __init__(self, tokenizer, prompt_len: int, n: int, stops, on_text: OnText | None):
        self.tokenizer, self.prompt_len, self.on_text = tokenizer, prompt_len, on_text
        self.stops = tuple(stops)
        self.streams = [StopStream(self.stops) for _ in range(n)]

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if not self.stops and not self.on_text:
            return done
        for row, stream in enumerate(self.streams):
            if stream.stopped:
                done[row] = True
                continue
            text = self.tokenizer.decode(input_ids[row, self.prompt_len:], skip_special_tokens=True)
            delta = stream.feed(text)
            if delta and self.on_text:
                self.on_text(row, delta)
            done[row] = stream.stopped
        return done
