"""Interoperability check: the real mini-swe-agent (PyPI) drives a model served by `crucible serve`.

Both of mini-swe-agent's modes talk to crucible serve's OpenAI-compatible /v1/chat/completions
through litellm, each with its own prompts: `text` (LitellmTextbasedModel, ```mswea_bash_command
blocks, mini_textbased.yaml) and `tool` (LitellmModel, its default: a `bash` tool in `tools`,
answers read from `tool_calls`, results sent back as `role: tool` messages, mini.yaml). Commands run
in crucible's sandbox, not on this machine:
the environment here is an adapter over `crucible.swe.workspace.Workspace` (mini-swe-agent's
LocalEnvironment would run model-written commands bare). The submissions (or the salvaged diffs)
are written as SWE-bench predictions and graded with `crucible swe grade`.

mini-swe-agent pulls in litellm, so it lives in a venv of its own; crucible's sandbox code needs
only the standard library, so this script runs in that venv with crucible's src on PYTHONPATH, and
starts `crucible serve` and `crucible swe grade` with crucible's own python:

    python3 -m venv /tmp/msa && /tmp/msa/bin/pip install mini-swe-agent==2.4.6
    crucible swe build --out swe/inst --n 2
    PYTHONPATH=src /tmp/msa/bin/python scripts/swe_mini_agent.py --instances swe/inst --out runs/msa \\
        --crucible-python .venv/bin/python [--model native:ckpt/]   # default: a random tiny native GPT

It prints each run's exit status and model calls, then the grade. `--scripted` serves
`crucible.testing.ScriptedModel` instead, replaying SCRIPTS[mode] (run `echo hi`, then submit with
its output): a check that the whole loop works in each mode, which a random model cannot show; it
prints each run's outcome, what the agent saw, and its submission, and grades nothing (the
submission is not a patch). Output: docs/generate.md. Not covered: mini-swe-agent's batch runner
for SWE-bench (it expects Docker images per instance).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from crucible.sandbox import Limits
from crucible.swe.instances import load
from crucible.swe.workspace import Workspace

SUBMIT = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
FINISH = f"echo {SUBMIT} && echo hi"   # submits "hi\n"
SCRIPTS = {   # the scripted model's replies, per mode: run a command, then submit
    "text": ["THOUGHT: First, see what the shell prints.\n\n```mswea_bash_command\necho hi\n```",
             f"THOUGHT: It printed hi. Submitting.\n\n```mswea_bash_command\n{FINISH}\n```"],
    "tool": ['Let me try the shell.\n<tool_call>\n{"name": "bash", "arguments": {"command": "echo hi"}}\n</tool_call>',
             "<tool_call>\n" + json.dumps({"name": "bash", "arguments": {"command": FINISH}}) + "\n</tool_call>"],
}
MODES = {"text": ("minisweagent.models.litellm_textbased_model", "LitellmTextbasedModel", "mini_textbased.yaml"),
         "tool": ("minisweagent.models.litellm_model", "LitellmModel", "mini.yaml")}


class SandboxEnvironment:
    """mini-swe-agent's Environment protocol over a crucible Workspace (each command in bubblewrap)."""

    def __init__(self, workspace: Workspace, timeout_s: float = 30.0):
        self.workspace, self.timeout_s = workspace, timeout_s

    def execute(self, action: dict, cwd: str = "", *, timeout: int | None = None) -> dict:
        from minisweagent.exceptions import Submitted

        seconds = float(timeout or self.timeout_s)
        out = self.workspace.bash(action.get("command", ""), Limits(timeout_s=seconds, wall_s=2 * seconds))
        output = {"output": out.stdout + out.stderr, "returncode": out.exit_code,
                  "exception_info": "" if out.status in ("ok", "runtime_error") else f"stopped: {out.detail}"}
        lines = out.stdout.lstrip().splitlines(keepends=True)
        if lines and lines[0].strip() == SUBMIT and out.exit_code == 0:
            submission = "".join(lines[1:])
            raise Submitted({"role": "exit", "content": submission,
                             "extra": {"exit_status": "Submitted", "submission": submission}})
        return output

    def get_template_vars(self, **kwargs) -> dict:
        return {"system": "Linux", "release": "", "version": "", "machine": "x86_64", "cwd": "/sandbox", **kwargs}

    def serialize(self) -> dict:
        return {"info": {"config": {"environment_type": "crucible.sandbox"}}}


def start_server(crucible_python: str, spec: str | None, script: Path | None) -> tuple[subprocess.Popen, str]:
    """`crucible serve --model SPEC`, or (with `script`) this file serving the scripted model."""
    argv = [crucible_python, "-m", "crucible", "serve", "--model", spec, "--port", "0", "--quiet",
            "--name", "crucible-model"] if script is None else [crucible_python, __file__, "--serve-script", str(script)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    line = proc.stdout.readline()
    if " on http" not in line:
        proc.kill()
        raise SystemExit(f"crucible serve did not start: {line!r}")
    return proc, line.rsplit(" on ", 1)[1].strip()


def random_model(crucible_python: str, dest: Path) -> str:
    code = ("import sys; from crucible import testing; "
            "testing.random_gpt(testing.tokenizer(), seq_len=8192).save_pretrained(sys.argv[1], testing.tokenizer())")
    subprocess.run([crucible_python, "-c", code, str(dest)], check=True)
    return f"native:{dest}"


def serve_script(path: str) -> None:
    """Run under crucible's python: serve the replies in `path` (a JSON list) as 'crucible-model'."""
    from crucible.serve import listen, serve
    from crucible.testing.scripted import ScriptedModel

    serve(ScriptedModel(json.loads(Path(path).read_text())), "crucible-model", listen("127.0.0.1", 0),
          label=f"scripted:{path}", quiet=True)


def make_model(mode: str, url: str, max_tokens: int):
    import importlib

    import yaml
    from minisweagent import config as msa_config

    module, cls, config_file = MODES[mode]
    yaml_config = yaml.safe_load((Path(msa_config.__file__).parent / config_file).read_text())
    model = getattr(importlib.import_module(module), cls)(
        **{k: v for k, v in yaml_config["model"].items() if k != "model_kwargs"},
        model_name="openai/crucible-model", cost_tracking="ignore_errors",
        model_kwargs={"api_base": url, "api_key": "none", "max_tokens": max_tokens, "temperature": 0.0,
                      "drop_params": True})
    return model, yaml_config["agent"]


def run_mode(mode: str, spec: str | None, args, instances, root: Path, out: Path, tmp: Path) -> list[dict]:
    """One server, one agent run per instance in `mode`; the predictions (none when scripted)."""
    from minisweagent.agents.default import DefaultAgent

    script = None
    if args.scripted:
        script = tmp / f"{mode}.json"
        script.write_text(json.dumps(SCRIPTS[mode]))
    server, url = start_server(args.crucible_python, spec, script)
    preds = []
    try:
        for instance in instances:
            model, agent_config = make_model(mode, url, args.max_tokens)
            with Workspace(root, instance) as ws:
                agent = DefaultAgent(model, SandboxEnvironment(ws), step_limit=args.step_limit, cost_limit=0,
                                     system_template=agent_config["system_template"],
                                     instance_template=agent_config["instance_template"])
                result = agent.run(task=instance["problem_statement"])
                patch = result.get("submission") or ws.diff(Limits(timeout_s=30))
            print(f"[{mode}] {instance['instance_id']}: mini-swe-agent exit {result.get('exit_status')}, "
                  f"{agent.n_calls} model calls to crucible serve, {len(agent.messages)} messages")
            (out / f"{instance['instance_id']}.{mode}.traj.json").write_text(json.dumps(agent.messages, indent=1))
            if args.scripted:
                report_scripted(mode, agent.messages, result)
            else:
                preds.append({"instance_id": instance["instance_id"], "model_name_or_path": spec,
                              "model_patch": patch})
    finally:
        server.terminate()
        server.wait(timeout=30)
    return preds


def report_scripted(mode: str, messages: list[dict], result: dict) -> None:
    """What each call got back from the server and what the agent sent next: the loop, turn by turn."""
    for m in messages[2:]:
        if m["role"] == "assistant":
            calls = [c["function"]["arguments"] for c in m.get("tool_calls") or []]
            finish = m.get("extra", {}).get("response", {}).get("choices", [{}])[0].get("finish_reason")
            print(f"  assistant (finish_reason {finish}): content {m.get('content')!r}" +
                  (f", tool_calls {calls}" if calls else ""))
        elif m["role"] in ("user", "tool"):
            print(f"  {m['role']}: {m['content'].strip()!r}")
    print(f"  submission: {result.get('submission')!r}")


def main() -> None:
    if sys.argv[1:2] == ["--serve-script"]:
        return serve_script(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--crucible-python", default=sys.executable)
    ap.add_argument("--model", help="what crucible serve serves (default: a random tiny native GPT)")
    ap.add_argument("--scripted", action="store_true", help="serve a model that replays SCRIPTS[mode] instead")
    ap.add_argument("--modes", default="text,tool", help="mini-swe-agent modes to run: text, tool or both")
    ap.add_argument("--limit", type=int, default=1)
    ap.add_argument("--step-limit", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, help="per model call (default 64; scripted: 512, room for a reply)")
    args = ap.parse_args()
    modes = args.modes.split(",")
    args.max_tokens = args.max_tokens or (512 if args.scripted else 64)
    if not set(modes) <= set(MODES) or (args.scripted and args.model):
        ap.error("--modes takes text and/or tool; --scripted and --model exclude each other")

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm would fetch prices from GitHub
    root, out = Path(args.instances), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    instances = load(root)[:args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        spec = None if args.scripted else args.model or random_model(args.crucible_python, Path(tmp) / "model")
        preds = {mode: run_mode(mode, spec, args, instances, root, out, Path(tmp)) for mode in modes}
    for mode in modes if not args.scripted else ():
        (out / f"preds.{mode}.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds[mode]))
        print(f"[{mode}] grade:", flush=True)
        subprocess.run([args.crucible_python, "-m", "crucible", "swe", "grade", "--instances", str(root),
                        "--predictions", str(out / f"preds.{mode}.jsonl"), "--out", str(out / f"graded-{mode}"),
                        "--no-progress"], check=True)


if __name__ == "__main__":
    main()
