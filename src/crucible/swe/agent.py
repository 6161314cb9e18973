"""A bash agent in the shape of mini-swe-agent: one linear conversation, one shell command a turn.

The model gets a system message and the task (the instance's problem statement plus how to act).
Each reply must carry exactly one ```bash fenced block; anything else is answered with a reminder,
and the run ends after MAX_FORMAT_ERRORS reminders in a row. The command runs in a fresh `bash -c`
inside the sandbox (no network; CPU, wall-clock and output caps; `crucible.swe.workspace`) over a
writable copy of the repository, and its exit code and output (head and tail kept when long) come
back as the next user message. A command whose output starts with the line
COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT submits: the rest of that output is the patch. A run that
ends any other way (step limit, time limit, format errors, a model error, an empty submission)
is salvaged: the working copy's `git diff` (new files included) becomes the patch.

The model is any crucible backend, asked through `chat`: its own chat template renders the turns
(`crucible.model.chat` for native models). The messages are saved as they were sent, so a resolved
run is SFT data as it stands (`crucible.swe.trajectories`).

Not covered: tool-call (function-calling) agents, persistent shells (each command starts fresh, as
in mini-swe-agent: `cd` does not carry over), and cost limits (no prices for local models).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace

from crucible.generate.types import BackendError, GenParams
from crucible.sandbox import Limits
from crucible.swe.workspace import Workspace

SUBMIT = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
MAX_FORMAT_ERRORS = 3
OUTPUT_CHARS = 10_000   # longer observations keep their head and tail
ACTION = re.compile(r"```bash\s*\n(.*?)\n```", re.S)

SYSTEM = """You are a software engineer working in a shell on a code repository. You act by running \
bash commands, one per reply.

Every reply has two parts: a short THOUGHT saying what you will do and why, then exactly one \
fenced code block tagged bash with the command, like this:

THOUGHT: I need to see which files the repository holds.

```bash
ls -la
```

Each command runs in a fresh `bash -c` at the repository root (a `cd` does not carry over; chain \
commands with && instead). There is no network and no interactive program (no editors, no pagers); \
edit files with sed, python3 or a heredoc."""

TASK = """Fix this issue in the repository at the current directory:

<issue>
{problem}
</issue>

Work step by step: find the code involved, reproduce the failure, fix the code (not the tests), \
and run the tests again. When you are done, submit with exactly this command (nothing after it):

```bash
echo {submit} && git add -A && git diff --cached
```"""

FORMAT_ERROR = f"""Your reply must contain exactly one ```bash fenced block; it had {{found}}. \
Reply with a THOUGHT and one command. To finish, run: echo {SUBMIT} && git add -A && git diff --cached"""


@dataclass
class AgentConfig:
    step_limit: int = 30
    time_limit_s: float = 600.0
    command_limits: Limits = field(default_factory=lambda: Limits(timeout_s=30.0, wall_s=60.0, output_bytes=1 << 20))
    params: GenParams = GenParams(max_tokens=1024, temperature=0.0)


def observation(status: str, exit_code: int | None, output: str, detail: str) -> str:
    if len(output) > OUTPUT_CHARS:
        half = OUTPUT_CHARS // 2
        output = (f"{output[:half]}\n... {len(output) - OUTPUT_CHARS} characters elided; "
                  f"narrow the command (head, tail, grep) ...\n{output[-half:]}")
    note = "" if status in ("ok", "runtime_error") else f"<warning>the command was stopped: {detail}</warning>\n"
    return f"{note}<returncode>{exit_code}</returncode>\n<output>\n{output}</output>"


def solve(backend, root, instance: dict, config: AgentConfig, *, seed: int | None = None,
          unsafe: bool = False) -> dict:
    """Run the agent on one instance; a trajectory row (messages, exit_status, model_patch, ...)."""
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": TASK.format(problem=instance["problem_statement"].strip(),
                                                        submit=SUBMIT)}]
    start = time.monotonic()
    steps = format_errors = 0
    exit_status, submission, detail = None, None, ""
    with Workspace(root, instance, unsafe=unsafe) as ws:
        while exit_status is None:
            if steps >= config.step_limit:
                exit_status = "step_limit"
                break
            if time.monotonic() - start > config.time_limit_s:
                exit_status = "time_limit"
                break
            steps += 1
            params = config.params if seed is None else replace(config.params, seed=(seed + steps) & 0x7FFFFFFF)
            try:
                reply = backend.chat(messages, 1, params)[0].text
            except BackendError as e:
                exit_status, detail = "model_error", str(e)
                break
            messages.append({"role": "assistant", "content": reply})
            actions = ACTION.findall(reply)
            if len(actions) != 1:
                format_errors += 1
                if format_errors > MAX_FORMAT_ERRORS:
                    exit_status = "format_error"
                    break
                messages.append({"role": "user", "content": FORMAT_ERROR.format(found=len(actions))})
                continue
            format_errors = 0
            out = ws.bash(actions[0], config.command_limits)
            first, _, rest = out.stdout.lstrip().partition("\n")
            if first.strip() == SUBMIT:
                exit_status, submission = "submitted", rest
                break
            messages.append({"role": "user", "content": observation(out.status, out.exit_code,
                                                                    out.stdout + out.stderr, out.detail)})
        patch = submission if submission and submission.strip() else ws.diff(config.command_limits)
    return {"instance_id": instance["instance_id"], "messages": messages, "exit_status": exit_status,
            "detail": detail, "steps": steps, "salvaged": not (submission and submission.strip()),
            "model_patch": patch, "wall_s": round(time.monotonic() - start, 3)}

