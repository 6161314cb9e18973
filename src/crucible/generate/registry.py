"""Model spec strings -> backends: which prefix builds which backend, and nothing else.

    native:DIR                crucible's own GPT and KV-cache engine (crucible.model)
    hf:DIR                    transformers AutoModelForCausalLM + generate
    vllm:DIR                  vLLM (optional, GPU; imported only when asked for)
    openai:MODEL@BASE_URL     any OpenAI-compatible server (vLLM, llama.cpp, `crucible serve`, ...)

Each constructor imports its backend module (and so its heavy libraries) only when that prefix is
asked for. The backends import only `crucible.generate.types`, never this module.
A caller that already has a model in memory builds the backend itself (e.g.
`NativeBackend(engine)` for a policy being trained) and needs no spec.
"""

from __future__ import annotations

import re
from pathlib import Path

from crucible.generate.types import Backend, BackendError


def _native(target: str, spec: str, **options) -> Backend:
    from crucible.generate.native_backend import NativeBackend
    return NativeBackend.load(target, spec=spec, **options)


def _hf(target: str, spec: str, **options) -> Backend:
    from crucible.generate.hf_backend import HFBackend
    return HFBackend(target, spec=spec, **options)


def _vllm(target: str, spec: str, **options) -> Backend:
    from crucible.generate.vllm_backend import VLLMBackend
    return VLLMBackend(target, spec=spec, **options)


def _openai(target: str, spec: str, **options) -> Backend:
    from crucible.generate.openai_client import OpenAIBackend
    model, base_url = parse_openai_target(target)
    return OpenAIBackend(model, base_url, spec=spec, **options)


BACKENDS = {"native": _native, "hf": _hf, "vllm": _vllm, "openai": _openai}
LOCAL = ("native", "hf", "vllm")  # the target is a directory


def parse_spec(spec: str) -> tuple[str, str]:
    kind, sep, target = spec.partition(":")
    if not sep or kind not in BACKENDS or not target:
        raise BackendError(f"bad model spec {spec!r}: expected native:DIR, hf:DIR, vllm:DIR or "
                           "openai:MODEL@BASE_URL")
    return kind, target


def parse_openai_target(target: str) -> tuple[str, str | None]:
    """MODEL@BASE_URL (the URL may be omitted: OPENAI_BASE_URL or api.openai.com)."""
    m = re.match(r"^(.+?)@(https?://\S+)$", target)
    if m:
        return m.group(1), m.group(2).rstrip("/")
    if "@" in target:
        raise BackendError(f"bad openai spec {target!r}: expected MODEL@http(s)://HOST[:PORT]/v1")
    return target, None


def load_backend(spec: str, **options) -> Backend:
    """Build the backend a spec names (BackendError for a bad spec or a model that cannot load)."""
    kind, target = parse_spec(spec)
    if kind in LOCAL and not Path(target).is_dir():
        raise BackendError(f"{spec}: {target} is not a directory")
    return BACKENDS[kind](target, spec, **options)
