"""A scripted agent model: an OpenAI-compatible chat server that replays fixed replies per SWE instance.

`crucible swe run --model openai:scripted@URL` drives it like any model: the server finds the
instance by its problem statement in the first user turn and answers the reply of that turn from the
instance's script (`scripted_replies`: look around, a format error, apply the gold fix, run the
tests, then submit or not). Replies depend only on (instance, turn), so the same instances give the
same trajectories whichever thread, process or Ray node asks: tests and benchmarks compare runs
with it. `seen` keeps every request's messages. Not covered: sampling parameters (ignored) and
streaming.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SUBMIT = "```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && git add -A && git diff --cached\n```"
NO_MORE = "no more commands"  # after the script: a reply without a command (a format error)


def scripted_replies(instance: dict, *, submit: bool) -> list[str]:
    """Replies that fix the instance with its gold patch; without `submit` the run ends on format
    errors and its patch is salvaged from the working copy."""
    fix = (f"THOUGHT: apply the fix.\n```bash\ncat > /tmp/fix.diff <<'CRUCIBLE_EOF'\n{instance['patch']}"
           "CRUCIBLE_EOF\ngit apply /tmp/fix.diff && echo applied\n```")
    replies = ["THOUGHT: look around.\n```bash\nls && git status --short\n```",
               "I will just think about it.",  # a format error: answered with a reminder
               fix, f"```bash\n{instance['test_cmd']} 2>&1 | tail -3\n```"]
    return replies + ([SUBMIT] if submit else [])


class ScriptedAgentServer:
    """`with ScriptedAgentServer(instances, scripts) as server:` serves on 127.0.0.1 (server.spec is
    the model spec); `scripts` maps instance_id to its replies."""

    def __init__(self, instances: list[dict], scripts: dict[str, list[str]]):
        self.instances, self.scripts = instances, scripts
        self.seen: list[list[dict]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.spec = f"openai:scripted@{self.url}"

    def reply(self, messages: list[dict]) -> str:
        instance = next(i for i in self.instances if i["problem_statement"].strip() in messages[1]["content"])
        turn = sum(m["role"] == "assistant" for m in messages)
        script = self.scripts[instance["instance_id"]]
        self.seen.append(messages)
        return script[turn] if turn < len(script) else NO_MORE

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = server.reply(body["messages"])
                data = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                                "finish_reason": "stop"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def __enter__(self) -> "ScriptedAgentServer":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
