"""A small client for OpenAI-compatible servers: /v1/completions and /v1/chat/completions.

Why the standard library (urllib) and not the `openai` package: we need four things — JSON POST,
SSE streaming, retries with backoff, timeouts — and those are ~150 lines here, while the SDK
pulls in httpx, pydantic and anyio, and its retry policy would hide what we want to test and
document. Concurrency comes from the caller's threads (`concurrency` tells it how many); each
call is one blocking request.

Retries: 429, 500, 502, 503, 504 are retried up to `max_retries` times (6), connection errors
and timeouts up to `max_connect_retries` (3: a wrong port fails in seconds, a restarting server
is waited for), waiting `backoff_s * 2**attempt` (capped at 30 s, with ±25% jitter) or the
server's Retry-After when it sends one. Other 4xx fail at once with the server's message.
Key: CRUCIBLE_API_KEY, else OPENAI_API_KEY (none is fine for a local server).
Not covered: logprobs, tools/function calling, the Responses API.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

from crucible.generate.types import BackendError, GenParams, Generation, OnText
from crucible.sanitize import StopStream, truncate_at_stop

RETRY_STATUS = (429, 500, 502, 503, 504)
DEFAULT_BASE_URL = "https://api.openai.com/v1"
MAX_API_STOPS = 4  # the OpenAI API refuses more; the rest are applied on our side


class APIError(BackendError):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class OpenAIClient:
    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout_s: float = 300.0,
                 max_retries: int = 6, max_connect_retries: int = 3, backoff_s: float = 1.0, sleep=time.sleep):
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.api_key = api_key if api_key is not None else (
            os.environ.get("CRUCIBLE_API_KEY") or os.environ.get("OPENAI_API_KEY"))
        self.timeout_s, self.max_retries, self.backoff_s, self.sleep = timeout_s, max_retries, backoff_s, sleep
        self.max_connect_retries = max_connect_retries
        self.retries = 0  # how many retries this client made (for tests and logs)

    def _request(self, path: str, body: dict | None):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return urllib.request.Request(self.base_url + path, data=data, headers=headers,
                                      method="GET" if body is None else "POST")

    def _open(self, path: str, body: dict | None):
        """Open the response, retrying what is worth retrying; returns a file-like response."""
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                return urllib.request.urlopen(self._request(path, body), timeout=self.timeout_s)
            except urllib.error.HTTPError as e:
                message = _error_message(e)
                if e.code not in RETRY_STATUS or attempt == self.max_retries:
                    raise APIError(f"{self.base_url}{path}: HTTP {e.code}: {message}", e.code) from None
                retry_after = _retry_after(e.headers.get("Retry-After"))
            except (urllib.error.URLError, socket.timeout, ConnectionError, TimeoutError) as e:
                if attempt >= min(self.max_retries, self.max_connect_retries):
                    reason = getattr(e, "reason", e)
                    raise APIError(f"{self.base_url}{path}: {reason} (after {attempt + 1} attempts)") from None
            self.retries += 1
            wait = min(30.0, self.backoff_s * 2 ** attempt) * random.uniform(0.75, 1.25)
            self.sleep(min(retry_after, 60.0) if retry_after is not None else wait)
        raise AssertionError("unreachable")

    def get(self, path: str) -> dict:
        with self._open(path, None) as r:
            return json.loads(r.read())

    def post(self, path: str, body: dict) -> dict:
        # A timeout while reading the body is retried like one while connecting.
        for attempt in range(self.max_retries + 1):
            try:
                with self._open(path, body) as r:
                    return json.loads(r.read())
            except (socket.timeout, TimeoutError, ConnectionError):
                if attempt == self.max_retries:
                    raise APIError(f"{self.base_url}{path}: read timed out after {self.timeout_s} s") from None
                self.retries += 1
        raise AssertionError("unreachable")

    def stream(self, path: str, body: dict) -> Iterator[dict]:
        """Server-sent events of a `"stream": true` request, parsed, until [DONE]."""
        with self._open(path, {**body, "stream": True}) as r:
            for raw in r:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                event = json.loads(payload)
                if "error" in event:
                    raise APIError(f"{self.base_url}{path}: {event['error']}")
                yield event


def _error_message(e: urllib.error.HTTPError) -> str:
    try:
        body = e.read().decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - the status is what matters
        return e.reason or ""
    try:
        err = json.loads(body).get("error")
        return err.get("message", str(err)) if isinstance(err, dict) else str(err)
    except (json.JSONDecodeError, AttributeError):
        return body[:300]


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class OpenAIBackend:
    """`openai:MODEL@BASE_URL`: base prompts go to /completions, conversations to /chat/completions."""

    def __init__(self, model: str, base_url: str | None = None, *, spec: str = "", concurrency: int | None = None,
                 **client_options):
        self.model = model
        self.spec = spec or f"openai:{model}"
        self.client = OpenAIClient(base_url, **client_options)
        self.concurrency = concurrency or int(os.environ.get("CRUCIBLE_CONCURRENCY", "8"))

    def _body(self, n: int, params: GenParams) -> dict:
        body = {"model": self.model, "n": n, "max_tokens": params.max_tokens,
                "temperature": params.temperature, "top_p": params.top_p}
        if params.top_k:
            body["top_k"] = params.top_k  # vLLM and `crucible serve` accept it; OpenAI does not
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop[:MAX_API_STOPS])
        return body

    def complete(self, prompt, n, params, on_text: OnText | None = None):
        return self._generate("/completions", {"prompt": prompt}, n, params, on_text)

    def chat(self, messages, n, params, on_text: OnText | None = None):
        return self._generate("/chat/completions", {"messages": messages}, n, params, on_text)

    def _generate(self, path, payload, n, params, on_text):
        """Ask for n choices; servers that return fewer are asked again for the rest."""
        out: list[Generation] = []
        while len(out) < n:
            body = {**payload, **self._body(n - len(out), params)}
            if params.seed is not None and out:
                body["seed"] = params.seed + len(out)
            got = (self._stream(path, body, len(out), on_text, params.stop) if on_text
                   else self._once(path, body, params.stop))
            if not got:
                raise APIError(f"{self.client.base_url}{path}: the server returned no choices")
            out.extend(got)
        return out[:n]

    def _once(self, path, body, stops) -> list[Generation]:
        reply = self.client.post(path, body)
        usage = reply.get("usage") or {}
        gens = []
        for choice in sorted(reply.get("choices", []), key=lambda c: c.get("index", 0)):
            text = choice.get("text")
            if text is None:
                text = (choice.get("message") or {}).get("content") or ""
            gens.append(_finish(text, choice.get("finish_reason"), stops))
        if gens:  # usage is per request; spread it so totals add up
            gens[0].prompt_tokens = usage.get("prompt_tokens", 0)
            for g in gens:
                g.completion_tokens = usage.get("completion_tokens", 0) // len(gens)
        return gens

    def _stream(self, path, body, offset, on_text, stops) -> list[Generation]:
        texts: dict[int, str] = {}
        reasons: dict[int, str | None] = {}
        watchers: dict[int, StopStream] = {}
        for event in self.client.stream(path, body):
            for choice in event.get("choices", []):
                i = choice.get("index", 0)
                delta = choice.get("text")
                if delta is None:
                    delta = (choice.get("delta") or {}).get("content") or ""
                texts[i] = texts.get(i, "") + delta
                watcher = watchers.setdefault(i, StopStream(tuple(stops)))
                shown = watcher.feed(texts[i])
                if shown:
                    on_text(offset + i, shown)
                if choice.get("finish_reason"):
                    reasons[i] = choice["finish_reason"]
        for i, watcher in watchers.items():
            rest = watcher.finish()
            if rest:
                on_text(offset + i, rest)
        return [_finish(texts[i], reasons.get(i), stops) for i in sorted(texts)]

    def close(self):
        pass


def _finish(text: str, reason: str | None, stops) -> Generation:
    text, hit = truncate_at_stop(text, stops)  # servers differ in how exactly they apply stops
    return Generation(text, "length" if reason == "length" and not hit else "stop")
