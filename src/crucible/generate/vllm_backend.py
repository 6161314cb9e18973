"""`vllm:DIR`: vLLM's offline `LLM` engine (optional: `pip install 'crucible[gpu]'`, Linux + CUDA).

vLLM is imported here only, when a `vllm:` spec is loaded, so nothing else needs it installed; if
it is missing the error says how to get it or what to use instead. Each call is one
`LLM.generate` with `SamplingParams(n=...)`, so the n samples share vLLM's prefix cache; chat
prompts go through the tokenizer's chat template. vLLM's offline API does not stream: `on_text`
receives each sample's whole text when it is done.
Not covered (untested here: the lab machines have no GPU): tensor parallelism options, LoRA adapters.
For a long evaluation, `vllm serve DIR` and `openai:` give the same samples with concurrency.
"""

from __future__ import annotations

import threading

from crucible.generate.types import BackendError, GenParams, Generation, OnText, model_type
from crucible.sanitize import truncate_at_stop


def import_vllm():
    try:
        import vllm
    except ImportError as e:
        raise BackendError(f"vllm:DIR needs the vllm package, which is not importable here ({e}); install it "
                           "with `pip install 'crucible[gpu]'` on a CUDA machine, or use hf:DIR or "
                           "openai:MODEL@URL against a running `vllm serve`") from None
    return vllm


class VLLMBackend:
    concurrency = 1  # one engine; it batches the n samples of a call itself

    def __init__(self, path: str, *, spec: str = "", **engine_options):
        vllm = import_vllm()
        self.spec = spec or f"vllm:{path}"
        self.vllm = vllm
        self.llm = vllm.LLM(model=path, trust_remote_code=model_type(path) == "crucible_gpt", **engine_options)
        self.tokenizer = self.llm.get_tokenizer()
        self.lock = threading.Lock()

    def _params(self, n: int, params: GenParams):
        return self.vllm.SamplingParams(n=n, max_tokens=params.max_tokens, temperature=params.temperature,
                                        top_p=params.top_p, top_k=params.top_k if params.top_k > 0 else -1,
                                        seed=params.seed, stop=list(params.stop) or None)

    def complete(self, prompt: str, n: int, params: GenParams, on_text: OnText | None = None) -> list[Generation]:
        return self._generate(prompt, n, params, on_text)

    def chat(self, messages: list[dict], n: int, params: GenParams, on_text: OnText | None = None) -> list[Generation]:
        if not getattr(self.tokenizer, "chat_template", None):
            raise BackendError(f"{self.spec}: the tokenizer has no chat template; prompt it as a base model")
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self._generate(text, n, params, on_text)

    def _generate(self, prompt: str, n: int, params: GenParams, on_text: OnText | None) -> list[Generation]:
        with self.lock:
            request = self.llm.generate([prompt], self._params(n, params), use_tqdm=False)[0]
        gens = []
        for i, out in enumerate(request.outputs):
            text, _ = truncate_at_stop(out.text, params.stop)
            gens.append(Generation(text, "length" if out.finish_reason == "length" else "stop",
                                   len(request.prompt_token_ids or []), len(out.token_ids)))
            if on_text and text:
                on_text(i, text)
        return gens

    def close(self) -> None:
        self.llm = None
