"""The HTTP routes (a Starlette app): OpenAI's completions, chat completions and models, vLLM's
tokenizer endpoints, health. See crucible.serve for why Starlette + uvicorn.

Each generation runs in a worker thread (`model.run` blocks); many may be in flight at once, and a
native model batches them (crucible.model.scheduler). A streamed reply is fed from that thread
through an asyncio queue; when the client goes away, the request is cancelled.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from crucible.generate.types import BackendError
from crucible.serve import protocol
from crucible.serve.models import Job
from crucible.serve.protocol import RequestError
from crucible.serve.tools import parse_tool_calls

PATH = re.compile(r"(?<![\w.])(?:/[\w.@+-]+){2,}/?")   # an absolute path of two or more parts


def scrub(message: str) -> str:
    """Error messages never show the server's files (a checkpoint path says who runs it and where)."""
    return PATH.sub("<path>", message)


def error(status: int, message: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    kind = {404: "NotFoundError", 405: "MethodNotAllowed"}.get(status, "invalid_request_error" if status < 500
                                                              else "server_error")
    return JSONResponse({"error": {"message": scrub(message), "type": kind, "param": param,
                                   "code": code or status}}, status_code=status)


def make_app(model, name: str, *, chat_max_tokens: int = 512) -> Starlette:
    """The ASGI app serving `model` (a crucible.serve.models object) as `name`."""

    async def models(request: Request):
        return JSONResponse({"object": "list", "data": [card()]})

    async def model_card(request: Request):
        if request.path_params["model"] != name:
            return error(404, f"The model {request.path_params['model']!r} does not exist", "model", "model_not_found")
        return JSONResponse(card())

    def card() -> dict:
        return {"id": name, "object": "model", "created": 0, "owned_by": "crucible", "root": name,
                "max_model_len": model.context_length}

    async def health(request: Request):
        return JSONResponse({"status": "ok"})

    async def tokenize(request: Request):
        body = await json_body(request)
        if "messages" in body:
            ids = model.text.chat_prompt(protocol.parse_messages(body), protocol.parse_tools(body))
        elif isinstance(body.get("prompt"), str):
            ids = model.text.base_prompt(body["prompt"]) if body.get("add_special_tokens", True) else \
                model.text.encode(body["prompt"])
        else:
            raise RequestError("tokenize takes a prompt (string) or messages", param="prompt")
        out = {"count": len(ids), "max_model_len": model.context_length, "tokens": ids}
        if body.get("return_token_strs"):
            out["token_strs"] = [model.text.token_text(t) for t in ids]
        return JSONResponse(out)

    async def detokenize(request: Request):
        body = await json_body(request)
        ids = body.get("tokens")
        if not protocol.is_token_ids(ids) or not all(0 <= t < model.text.vocab_size for t in ids):
            raise RequestError(f"tokens must be a list of token ids in [0, {model.text.vocab_size})", param="tokens")
        return JSONResponse({"prompt": model.text.decode(ids)})

    async def tokenizer_info(request: Request):
        text = model.text
        return JSONResponse({"tokenizer_class": type(getattr(text.tokenizer, "_hf", text.tokenizer)).__name__,
                             "vocab_size": text.vocab_size, "max_model_len": model.context_length,
                             "eos_token": text.eos_token, "bos_token": text.bos_token,
                             "chat_template": text.chat_template})

    async def completions(request: Request):
        return await generate(request, chat=False)

    async def chat_completions(request: Request):
        return await generate(request, chat=True)

    async def generate(request: Request, chat: bool):
        body = await json_body(request)
        if body.get("model") not in (None, name):
            raise RequestError(f"The model {body.get('model')!r} does not exist; this server has {name!r}", 404,
                               "model", "model_not_found")
        opts = protocol.parse_options(body, chat)
        if chat:
            prompts = [model.text.chat_prompt(protocol.parse_messages(body), opts.tools)]
            texts = [None]
        else:
            raw = protocol.parse_prompts(body, model.text.vocab_size)
            prompts = [model.text.base_prompt(p) if isinstance(p, str) else p for p in raw]
            texts = [p if isinstance(p, str) else model.text.decode(p) for p in raw]
        longest = max(len(p) for p in prompts)
        if opts.max_tokens is None:
            default = chat_max_tokens if chat else 16
            opts.max_tokens = max(1, min(default, model.context_length - longest))
        for p in prompts:
            protocol.check_context(len(p), opts.max_tokens, model.context_length, chat)
        ranked = opts.best_of > opts.n   # the scores rank best_of samples: log-probs are needed
        jobs = [Job(p, opts.best_of, opts.max_tokens, opts.temperature, opts.top_p, opts.top_k, opts.seed, opts.stop,
                    opts.ignore_eos, opts.logprobs if not ranked else opts.logprobs or 0,
                    opts.logprobs if opts.echo else None) for p in prompts]
        reply = Reply(model, name, chat, opts, prompts, texts)
        if opts.stream:
            return StreamingResponse(reply.stream(jobs), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        results = await asyncio.gather(*(run(job) for job in jobs))
        for result in results if ranked else ():
            result.samples = sorted(result.samples, key=lambda s: -sum(s.logprobs))[:opts.n]
        return JSONResponse(reply.whole(results))

    async def run(job: Job):
        try:
            return await anyio.to_thread.run_sync(model.run, job, limiter=LIMITER)
        except BackendError as e:
            raise RequestError(str(e)) from None

    routes = [Route("/v1/models", models), Route("/v1/models/{model:path}", model_card),
              Route("/health", health), Route("/v1/health", health),
              Route("/v1/completions", completions, methods=["POST"]),
              Route("/v1/chat/completions", chat_completions, methods=["POST"])]
    for prefix in ("", "/v1"):   # vLLM serves these at the root
        routes += [Route(prefix + "/tokenize", tokenize, methods=["POST"]),
                   Route(prefix + "/detokenize", detokenize, methods=["POST"]),
                   Route(prefix + "/tokenizer_info", tokenizer_info)]
    handlers = {RequestError: lambda req, e: error(e.status, str(e), e.param, e.code),
                BackendError: lambda req, e: error(400, str(e)),
                HTTPException: lambda req, e: error(e.status_code, f"{e.detail}: {req.method} {req.url.path}"),
                Exception: lambda req, e: error(500, f"{type(e).__name__}: {e}")}
    return Starlette(routes=routes, exception_handlers=handlers)


LIMITER = anyio.CapacityLimiter(256)   # requests in flight (anyio's default of 40 would queue the rest)


async def json_body(request: Request) -> dict:
    raw = await request.body()
    try:
        body = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RequestError(f"the request body is not valid JSON ({e})") from None
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    return body


class Reply:
    """Turns the results of one request's jobs (one per prompt) into OpenAI's response shapes."""

    def __init__(self, model, name: str, chat: bool, opts, prompts: list[list[int]], texts: list[str | None]):
        self.model, self.name, self.chat, self.opts = model, name, chat, opts
        self.prompts, self.texts = prompts, texts
        self.id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        self.created = int(time.time())

    def usage(self, results) -> dict:
        prompt = sum(len(p) for p in self.prompts)
        completion = sum(len(s.completion.ids) for r in results for s in r.samples)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def envelope(self, choices: list, chunk: bool = False) -> dict:
        kind = ("chat.completion.chunk" if chunk else "chat.completion") if self.chat else "text_completion"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.name, "choices": choices}

    def whole(self, results) -> dict:
        choices = []
        for p, result in enumerate(results):
            for j, sample in enumerate(result.samples):
                choices.append(self.choice(p * self.opts.n + j, p, result, sample))
        return {**self.envelope(choices), "usage": self.usage(results)}

    def choice(self, index: int, p: int, result, sample) -> dict:
        text, finish = sample.completion.text, sample.completion.finish_reason
        if self.chat:
            message = {"role": "assistant", "content": text}
            if self.opts.tools:
                message["content"], calls = parse_tool_calls(text)
                if calls:
                    message["tool_calls"] = calls if self.opts.parallel_tool_calls else calls[:1]
                    finish = "tool_calls"
            out = {"index": index, "message": message, "finish_reason": finish}
            out["logprobs"] = self.chat_logprobs(sample) if self.opts.logprobs is not None else None
            return out
        if self.opts.echo:
            text = self.texts[p] + text
        logprobs = self.completion_logprobs(p, result, sample) if self.opts.logprobs is not None else None
        return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}

    # -- log-probs -------------------------------------------------------------------------------
    def completion_logprobs(self, p: int, result, sample) -> dict:
        """OpenAI's legacy shape: parallel lists over the (echoed prompt's and) generated tokens."""
        ids, lps, tops = list(sample.completion.ids[:len(sample.logprobs)]), list(sample.logprobs), list(sample.top)
        if self.opts.echo:
            ids = self.prompts[p] + ids
            lps = result.prompt_logprobs + lps
            tops = [None] + result.prompt_top[1:] + tops
        token_text = self.model.text.token_text
        tokens = [token_text(t) for t in ids]
        offsets, at = [], 0
        for t in tokens:
            offsets.append(at)
            at += len(t)
        top = [None if alt is None else {} for alt in tops]
        for k, (t, lp) in enumerate(zip(tokens, lps)):
            if top[k] is None:
                continue
            for i, alt_lp in tops[k]:   # likeliest first: a text several tokens share shows its likeliest
                top[k].setdefault(token_text(i), alt_lp)
            if lp is not None:          # the chosen token is among the alternatives
                top[k].setdefault(t, lp)
        return {"tokens": tokens, "token_logprobs": lps, "top_logprobs": top, "text_offset": offsets}

    def chat_logprobs(self, sample) -> dict:
        token_text = self.model.text.token_text

        def entry(token: int, lp: float) -> dict:
            return {"token": token_text(token), "logprob": lp, "bytes": list(self.model.text.token_bytes(token))}

        return {"content": [{**entry(t, lp), "top_logprobs": [entry(i, v) for i, v in alt]}
                            for t, lp, alt in zip(sample.completion.ids, sample.logprobs, sample.top)]}

    # -- streaming -------------------------------------------------------------------------------
    async def stream(self, jobs: list[Job]):
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        n = self.opts.n
        buffered = self.chat and bool(self.opts.tools)   # tool calls are parsed from the whole reply
        for p, job in enumerate(jobs):
            if not buffered:
                job.on_text = (lambda p: lambda j, text: loop.call_soon_threadsafe(
                    queue.put_nowait, ("text", p * n + j, text)))(p)

        async def run(p: int, job: Job):
            try:
                result = await anyio.to_thread.run_sync(self.model.run, job, limiter=LIMITER)
                queue.put_nowait(("done", p, result))
            except Exception as e:  # noqa: BLE001 - the status line is sent: report in the stream
                queue.put_nowait(("error", p, e))

        def event(payload: dict) -> str:
            return f"data: {json.dumps(payload)}\n\n"

        tasks = [asyncio.create_task(run(p, job)) for p, job in enumerate(jobs)]
        results = {}
        try:
            for p in range(len(jobs)):
                for j in range(n):
                    if self.chat:
                        yield event(self.envelope([{"index": p * n + j, "delta": {"role": "assistant", "content": ""},
                                                    "logprobs": None, "finish_reason": None}], True))
                    elif self.opts.echo:
                        yield event(self.envelope([{"index": p * n + j, "text": self.texts[p], "logprobs": None,
                                                    "finish_reason": None}], True))
            while len(results) < len(jobs):
                kind, where, value = await queue.get()
                if kind == "text":
                    yield event(self.envelope([self.delta(where, value)], True))
                elif kind == "error":
                    message = value if isinstance(value, (BackendError, RequestError)) else \
                        f"{type(value).__name__}: {value}"
                    yield event({"error": {"message": scrub(str(message)), "type": "server_error"}})
                    results[where] = None
                else:
                    results[where] = value
                    for j, sample in enumerate(value.samples):
                        yield event(self.envelope([self.last(where, value, j, sample, buffered)], True))
            if self.opts.include_usage and all(r is not None for r in results.values()):
                yield event({**self.envelope([], True), "usage": self.usage([results[p] for p in range(len(jobs))])})
            yield "data: [DONE]\n\n"
        finally:   # the client left (or we are done): stop what is still generating
            for job in jobs:
                job.cancelled.set()
            for task in tasks:
                task.cancel()

    def delta(self, index: int, text: str) -> dict:
        if self.chat:
            return {"index": index, "delta": {"content": text}, "logprobs": None, "finish_reason": None}
        return {"index": index, "text": text, "logprobs": None, "finish_reason": None}

    def last(self, p: int, result, j: int, sample, buffered: bool) -> dict:
        """A choice's closing chunk: its finish reason, and what is only known at the end (log-probs,
        tool calls, a buffered reply)."""
        whole = self.choice(p * self.opts.n + j, p, result, sample)
        if self.chat:
            delta = {}
            if buffered:
                delta = {k: v for k, v in whole["message"].items() if k != "role"}
                for i, call in enumerate(delta.get("tool_calls", [])):
                    call["index"] = i
            return {"index": whole["index"], "delta": delta, "logprobs": whole["logprobs"],
                    "finish_reason": whole["finish_reason"]}
        return {"index": whole["index"], "text": "", "logprobs": whole["logprobs"],
                "finish_reason": whole["finish_reason"]}

