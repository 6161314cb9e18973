"""The OpenAI-compatible client against an in-process fake server: retries, timeouts, concurrency."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crucible.generate.registry import load_backend, parse_openai_target
from crucible.generate.types import BackendError, GenParams
from crucible.generate.openai_client import APIError, OpenAIBackend, OpenAIClient


class Fake:
    """Scripted server state: a queue of failures to return first, and what it saw."""

    def __init__(self):
        self.failures: list[tuple[int, dict]] = []   # (status, headers) answered before succeeding
        self.delay_s = 0.0
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0


def make_handler(fake: Fake):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _send(self, status, body: bytes, headers=None, ctype="application/json"):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with fake.lock:
                fake.requests.append(body)
                fake.headers.append(dict(self.headers))
                failure = fake.failures.pop(0) if fake.failures else None
                fake.in_flight += 1
                fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
            try:
                if failure:
                    status, headers = failure
                    return self._send(status, json.dumps({"error": {"message": f"scripted {status}"}}).encode(),
                                      headers)
                time.sleep(fake.delay_s)
                n = body.get("n", 1)
                if body.get("stream"):
                    return self._stream(body, n)
                if self.path.endswith("/chat/completions"):
                    choices = [{"index": i, "message": {"role": "assistant", "content": f"reply {i} STOP tail"},
                                "finish_reason": "stop"} for i in range(n)]
                else:
                    choices = [{"index": i, "text": f"{body['prompt']}+{i}", "finish_reason": "length"}
                               for i in range(min(n, 2))]  # at most 2 per request, like some servers
                self._send(200, json.dumps({"choices": choices, "usage": {"prompt_tokens": 3,
                                                                          "completion_tokens": 4}}).encode())
            finally:
                with fake.lock:
                    fake.in_flight -= 1

        def _stream(self, body, n):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for i in range(n):
                for piece in ("ab", "c\nde", "f\nEND", "never"):
                    event = {"choices": [{"index": i, "delta": {"content": piece}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.close_connection = True

    return Handler


@pytest.fixture
def server():
    fake = Fake()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(fake))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield fake
    httpd.shutdown()
    httpd.server_close()


def test_spec_parsing():
    assert parse_openai_target("org/model@http://h:1/v1/") == ("org/model", "http://h:1/v1")
    assert parse_openai_target("gpt-x") == ("gpt-x", None)
    with pytest.raises(BackendError):
        parse_openai_target("m@ftp://x")
    with pytest.raises(BackendError):
        load_backend("nope:x")


def test_retries_429_and_5xx_with_backoff_and_retry_after(server):
    server.failures = [(429, {"Retry-After": "0.5"}), (500, {}), (503, {})]
    waits: list[float] = []
    client = OpenAIClient(server.url, api_key="k", backoff_s=0.1, sleep=waits.append)
    reply = client.post("/completions", {"model": "m", "prompt": "p", "n": 1})
    assert reply["choices"][0]["text"] == "p+0"
    assert client.retries == 3 and len(server.requests) == 4
    assert waits[0] == 0.5                      # Retry-After wins
    assert 0.15 <= waits[1] <= 0.25 and 0.3 <= waits[2] <= 0.5  # then 0.1 * 2**attempt, ±25%
    assert server.headers[-1]["Authorization"] == "Bearer k"


def test_gives_up_after_max_retries_and_does_not_retry_4xx(server):
    server.failures = [(502, {})] * 3
    client = OpenAIClient(server.url, max_retries=2, sleep=lambda s: None)
    with pytest.raises(APIError, match="HTTP 502") as e:
        client.post("/completions", {"prompt": "p"})
    assert e.value.status == 502 and len(server.requests) == 3
    server.failures = [(400, {})]
    with pytest.raises(APIError, match="scripted 400"):
        client.post("/completions", {"prompt": "p"})
    assert len(server.requests) == 4


def test_timeout_is_retried_then_reported(server):
    server.delay_s = 1.0
    client = OpenAIClient(server.url, timeout_s=0.2, max_retries=1, sleep=lambda s: None)
    start = time.monotonic()
    with pytest.raises(APIError, match="timed out"):
        client.post("/completions", {"prompt": "p"})
    assert time.monotonic() - start < 3.0 and len(server.requests) >= 2


def test_backend_completes_chats_and_asks_again_for_missing_choices(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("CRUCIBLE_API_KEY", "secret")
    backend = load_backend(f"openai:tiny@{server.url}")
    gens = backend.complete("p", 5, GenParams(max_tokens=7, temperature=0.5, top_k=3, seed=11, stop=("+3",)))
    assert [g.text for g in gens] == ["p+0", "p+1", "p+0", "p+1", "p+0"]
    assert [r["n"] for r in server.requests] == [5, 3, 1]          # the server gave at most 2 a time
    assert [r["seed"] for r in server.requests] == [11, 13, 15]    # new seeds for the extra requests
    first = server.requests[0]
    assert first["max_tokens"] == 7 and first["top_k"] == 3 and first["stop"] == ["+3"]
    assert server.headers[0]["Authorization"] == "Bearer secret"
    chats = backend.chat([{"role": "user", "content": "hi"}], 2, GenParams(stop=(" STOP",)))
    assert [(g.text, g.finish_reason) for g in chats] == [("reply 0", "stop"), ("reply 1", "stop")]
    assert "top_k" not in server.requests[-1]  # only sent when asked for


def test_streaming_hides_stop_sequences(server):
    backend = OpenAIBackend("m", server.url)
    seen: dict[int, str] = {}
    gens = backend.chat([{"role": "user", "content": "x"}], 2, GenParams(stop=("\nEND",)),
                        on_text=lambda i, d: seen.__setitem__(i, seen.get(i, "") + d))
    assert [g.text for g in gens] == ["abc\ndef", "abc\ndef"]
    assert seen == {0: "abc\ndef", 1: "abc\ndef"}


def test_concurrency_keeps_requests_in_flight(server):
    server.delay_s = 0.3
    backend = OpenAIBackend("m", server.url, concurrency=4)
    start = time.monotonic()
    with ThreadPoolExecutor(backend.concurrency) as pool:
        texts = list(pool.map(lambda i: backend.complete(str(i), 1, GenParams())[0].text, range(8)))
    elapsed = time.monotonic() - start
    assert texts == [f"{i}+0" for i in range(8)]
    assert server.max_in_flight == 4 and elapsed < 8 * 0.3  # overlapped, not one by one
