"""An OpenAI-compatible HTTP server over any sampling backend: what `crucible serve` runs.

Endpoints: POST /v1/completions and /v1/chat/completions (`"stream": true` gives server-sent
events, ending in `data: [DONE]`), GET /v1/models and GET /health. Request fields understood:
model, prompt (a string or a list of strings) / messages, n, max_tokens, temperature, top_p,
top_k (an extension, as vLLM's), seed, stop, stream. Defaults follow the OpenAI API (temperature 1,
max_tokens 16 for completions) except chat max_tokens, which is the server's --max-tokens.

Why the standard library (http.server's ThreadingHTTPServer): one process serving one small model
to a few local clients (an evaluation, a chat window) needs no async framework; requests are
threads and the model is used by one at a time (the lock), which is also all an in-process model
can do. Throughput comes from the n samples of a request being one batch.
Not covered: authentication (bind to loopback, the default), logprobs, tools, token-id prompts.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from crucible.generate.types import BackendError, GenParams

MAX_N = 128


class RequestError(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def make_server(backend, host: str = "127.0.0.1", port: int = 8000, *, name: str = "crucible",
                chat_max_tokens: int = 512) -> ThreadingHTTPServer:
    """A server bound to (host, port) (port 0: any free one); call serve_forever() to run it."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "crucible-serve"

        def log_message(self, fmt, *args):  # one short line per request, on stderr
            if getattr(self.server, "verbose", True):
                super().log_message(fmt, *args)

        def _json(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str) -> None:
            kind = "invalid_request_error" if status < 500 else "server_error"
            self._json(status, {"error": {"message": message, "type": kind, "code": status}})

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                self._json(200, {"object": "list", "data": [
                    {"id": name, "object": "model", "created": 0, "owned_by": "crucible", "root": backend.spec}]})
            elif self.path.rstrip("/") in ("/health", "/v1/health"):
                self._json(200, {"status": "ok"})
            else:
                self._error(404, f"no route GET {self.path}")

        def do_POST(self):
            route = self.path.rstrip("/")
            if route not in ("/v1/completions", "/v1/chat/completions"):
                self._error(404, f"no route POST {self.path}")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"null")
                except (json.JSONDecodeError, UnicodeDecodeError) as e:
                    raise RequestError(f"the request body is not valid JSON ({e})") from None
                if not isinstance(body, dict):
                    raise RequestError("the request body must be a JSON object")
                if body.get("model") not in (None, name):
                    raise RequestError(f"model {body.get('model')!r} is not served here; this server has {name!r}",
                                       404)
                chat = route.endswith("chat/completions")
                params, n = parse_params(body, chat_max_tokens if chat else 16)
                inputs = [parse_messages(body)] if chat else parse_prompts(body)
                if body.get("stream"):
                    self._stream(chat, inputs, n, params)
                else:
                    self._complete(chat, inputs, n, params)
            except RequestError as e:
                self._error(e.status, str(e))
            except BackendError as e:
                self._error(400, str(e))
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client left mid-stream
            except Exception as e:  # noqa: BLE001 - report, keep serving
                self._error(500, f"{type(e).__name__}: {e}")

        def _run(self, chat, item, n, params, on_text=None):
            with lock:
                if chat:
                    return backend.chat(item, n, params, on_text)
                return backend.complete(item, n, params, on_text)

        def _complete(self, chat, inputs, n, params):
            choices, prompt_tokens, completion_tokens = [], 0, 0
            for p, item in enumerate(inputs):
                gens = self._run(chat, item, n, params)
                prompt_tokens += gens[0].prompt_tokens if gens else 0
                for j, g in enumerate(gens):
                    completion_tokens += g.completion_tokens
                    index = p * n + j
                    if chat:
                        choices.append({"index": index, "message": {"role": "assistant", "content": g.text},
                                        "finish_reason": g.finish_reason})
                    else:
                        choices.append({"index": index, "text": g.text, "logprobs": None,
                                        "finish_reason": g.finish_reason})
            self._json(200, {"id": new_id(chat), "object": "chat.completion" if chat else "text_completion",
                             "created": int(time.time()), "model": name, "choices": choices,
                             "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                       "total_tokens": prompt_tokens + completion_tokens}})

        def _stream(self, chat, inputs, n, params):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            rid, created = new_id(chat), int(time.time())
            kind = "chat.completion.chunk" if chat else "text_completion"

            def send(index, delta=None, finish=None):
                if chat:
                    choice = {"index": index, "delta": delta if delta is not None else {}, "finish_reason": finish}
                else:
                    choice = {"index": index, "text": (delta or {}).get("content", ""), "logprobs": None,
                              "finish_reason": finish}
                event = {"id": rid, "object": kind, "created": created, "model": name, "choices": [choice]}
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()

            try:
                for p, item in enumerate(inputs):
                    if chat:
                        for j in range(n):
                            send(p * n + j, {"role": "assistant", "content": ""})
                    gens = self._run(chat, item, n, params,
                                     on_text=lambda j, text, p=p: send(p * n + j, {"content": text}))
                    for j, g in enumerate(gens):
                        send(p * n + j, {}, g.finish_reason)
            except (BrokenPipeError, ConnectionResetError):
                raise
            except Exception as e:  # noqa: BLE001 - the status line is gone: report in the stream
                error = {"message": f"{type(e).__name__}: {e}", "type": "server_error"}
                self.wfile.write(f"data: {json.dumps({'error': error})}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def new_id(chat: bool) -> str:
    return ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]


def _number(body: dict, key: str, kind, default, lo=None, hi=None):
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise RequestError(f"{key} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    value = kind(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise RequestError(f"{key} must be in [{lo}, {hi}], got {value}")
    return value


def parse_params(body: dict, default_max_tokens: int) -> tuple[GenParams, int]:
    n = _number(body, "n", int, 1, 1, MAX_N)
    stop = body.get("stop") or ()
    if isinstance(stop, str):
        stop = (stop,)
    if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) for s in stop):
        raise RequestError("stop must be a string or a list of strings")
    seed = body.get("seed")
    if seed is not None:
        seed = _number(body, "seed", int, None)
    params = GenParams(max_tokens=_number(body, "max_tokens", int, default_max_tokens, 1, None),
                       temperature=_number(body, "temperature", float, 1.0, 0.0, 2.0),
                       top_p=_number(body, "top_p", float, 1.0, 0.0, 1.0),
                       top_k=max(0, _number(body, "top_k", int, 0, -1, None)),  # vLLM's -1 means off
                       seed=seed, stop=tuple(s for s in stop if s))
    why = params.check()
    if why:
        raise RequestError(why)
    return params, n


def parse_prompts(body: dict) -> list[str]:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        return prompt
    raise RequestError("prompt must be a string or a non-empty list of strings (token ids are not supported)")


def parse_messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages must be a non-empty list")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise RequestError(f"messages[{i}]: role must be system, user or assistant")
        content = m.get("content")
        if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        if not isinstance(content, str):
            raise RequestError(f"messages[{i}]: content must be a string or a list of text parts")
        out.append({"role": m["role"], "content": content})
    return out
