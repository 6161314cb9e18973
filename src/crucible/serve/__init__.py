"""An OpenAI-compatible HTTP server over a native or hf: checkpoint: what `crucible serve` runs.

Modules: `protocol` (request fields, limits, errors), `models` (token-level access to the model:
prompts, log-probs, tokenize; native models go through the continuous-batching scheduler), `app`
(the routes and response shapes, streaming), `tools` (tool calls parsed from the model's text).
docs/generate.md lists the endpoints and fields.

Why Starlette on uvicorn (as vLLM's server, which adds FastAPI's schema layer on top): the clients
people point at such a server (the OpenAI SDK, lm-evaluation-harness, litellm) need HTTP/1.1 done
right: keep-alive, chunked request bodies, clients that vanish mid-stream without a traceback in the
log. The standard library's http.server got the last two wrong; h11 (under uvicorn) gets them right.
An asyncio server also holds many streams open on one thread while the model runs in workers.
FastAPI's pydantic models would duplicate `protocol`'s checks, whose messages we control.
Not covered: authentication (bind to loopback, the default), TLS, several models in one server.
"""

from __future__ import annotations


def make_app(model, name: str, *, chat_max_tokens: int = 512):
    from crucible.serve.app import make_app as build
    return build(model, name, chat_max_tokens=chat_max_tokens)
