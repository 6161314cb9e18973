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

import socket


def make_app(model, name: str, *, chat_max_tokens: int = 512):
    from crucible.serve.app import make_app as build
    return build(model, name, chat_max_tokens=chat_max_tokens)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound before the model loads: a taken port fails at once (OSError)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)   # clients may connect as soon as the URL is printed; uvicorn accepts later
    except OSError:
        sock.close()
        raise
    return sock


def serve(model, name: str, sock: socket.socket, *, label: str = "", quiet: bool = False,
          chat_max_tokens: int = 512) -> None:
    """Print the URL line (`crucible serve: LABEL as 'NAME' on http://HOST:PORT/v1`, what clients
    and tests wait for), then serve `model` on `sock` until interrupted; the model is closed after."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(make_app(model, name, chat_max_tokens=chat_max_tokens),
                            log_level="warning" if quiet else "info", access_log=not quiet,
                            timeout_graceful_shutdown=2)
    print(f"crucible serve: {label or name} as {name!r} on http://{host}:{port}/v1", flush=True)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        model.close()
