"""A test double for what `crucible serve` serves: a model that replays fixed replies.

Agent clients (mini-swe-agent, anything that loops model call -> command -> observation) need a model
whose k-th reply is a chosen one: the first asks to run a command, the next submits. A real network
cannot be scripted across turns (`bigram_gpt` maps a token to the next, so every turn starts the
same), so `ScriptedModel` has the interface of `crucible.serve.models`' served models (a `text`,
`crucible.model.text.NativeText` over crucible's test tokenizer, and `run(job)`) without any
network: the reply to a chat is `replies[k]`, where k is the number of assistant turns already in
the conversation (counted in the rendered prompt: its <|assistant_start|> tokens before the last).
So it is stateless: the same conversation always gets the same reply, and several agents can
share one server.

The chat prompt is rendered exactly as a native checkpoint's (`crucible.model.chat`, with crucible's
test tokenizer), so what reaches the model (tool schemas, tool results, assistant tool calls) can be
read back through /tokenize. Replies are written as they are: a Hermes `<tool_call>{...}</tool_call>`
block becomes OpenAI `tool_calls` when the request has `tools` (`crucible.serve.tools`).

Serve it with `crucible.serve.serve(ScriptedModel(replies), name, listen(host, 0))` (test and script
code: nothing in src imports this room). Not covered: log-probs (a script has no distribution: such
requests are refused), and sampling parameters other than max_tokens and stop (a script is greedy).
"""

from __future__ import annotations

from crucible.generate.types import BackendError


class ScriptedModel:
    def __init__(self, replies: list[str], *, context_length: int = 8192):
        from crucible.model.text import NativeText
        from crucible.testing.gpt import tokenizer

        if not replies or not all(isinstance(r, str) for r in replies):
            raise ValueError("a script is a non-empty list of reply strings")
        self.replies = list(replies)
        self.text = NativeText(tokenizer())
        self.context_length = context_length
        self._assistant_start = self.text.tokenizer.special_id("assistant_start")

    def turn(self, prompt: list[int]) -> int:
        """Which reply a prompt gets: the assistant turns it already holds."""
        return max(0, prompt.count(self._assistant_start) - 1)

    def run(self, job):
        from crucible.model.engine import Completion
        from crucible.model.scheduler import Result, Sample

        if job.logprobs is not None or job.prompt_logprobs is not None:
            raise BackendError("a scripted model has no log-probs")
        k = self.turn(job.prompt)
        if k >= len(self.replies):
            raise BackendError(f"the script has {len(self.replies)} replies; this conversation asks for reply {k + 1}")
        text, finish = self.replies[k], "stop"
        cuts = [text.find(s) for s in job.stop if s in text]
        if cuts:
            text = text[:min(cuts)]
        ids = self.text.encode(text)
        if len(ids) > job.max_tokens:
            ids, finish = ids[:job.max_tokens], "length"
            text = self.text.decode(ids)
        samples = [Sample(Completion(list(ids), text, [0] * len(ids), finish)) for _ in range(job.n)]
        if job.on_text:
            for i in range(job.n):
                job.on_text(i, text)
        return Result(samples)

    def close(self) -> None:
        pass
