"""Interoperability check: the real mini-swe-agent (PyPI) drives a model served by `crucible serve`.

mini-swe-agent's text-based model class (LitellmTextbasedModel, its ```mswea_bash_command
actions) talks to crucible serve's OpenAI-compatible /v1/chat/completions; its DefaultAgent runs
with its own mini_textbased.yaml prompts. Commands run in crucible's sandbox, not on this machine:
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

It prints each run's exit status and model calls, then the grade. Not covered: mini-swe-agent's
batch runner for SWE-bench (it expects Docker images per instance).
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


def serve(crucible_python: str, spec: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([crucible_python, "-m", "crucible", "serve", "--model", spec, "--port", "0", "--quiet",
                             "--name", "crucible-model"], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--crucible-python", default=sys.executable)
    ap.add_argument("--model", help="what crucible serve serves (default: a random tiny native GPT)")
    ap.add_argument("--limit", type=int, default=1)
    ap.add_argument("--step-limit", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    args = ap.parse_args()

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm would fetch prices from GitHub
    import yaml
    from minisweagent import config as msa_config
    from minisweagent.agents.default import DefaultAgent
    from minisweagent.models.litellm_textbased_model import LitellmTextbasedModel

    root, out = Path(args.instances), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    instances = load(root)[:args.limit]
    yaml_config = yaml.safe_load((Path(msa_config.__file__).parent / "mini_textbased.yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        spec = args.model or random_model(args.crucible_python, Path(tmp) / "model")
        server, url = serve(args.crucible_python, spec)
        try:
            preds = []
            for instance in instances:
                model = LitellmTextbasedModel(
                    **{k: v for k, v in yaml_config["model"].items() if k != "model_kwargs"},
                    model_name="openai/crucible-model", cost_tracking="ignore_errors",
                    model_kwargs={"api_base": url, "api_key": "none", "max_tokens": args.max_tokens,
                                  "temperature": 0.0, "drop_params": True})
                with Workspace(root, instance) as ws:
                    agent = DefaultAgent(model, SandboxEnvironment(ws), step_limit=args.step_limit, cost_limit=0,
                                         system_template=yaml_config["agent"]["system_template"],
                                         instance_template=yaml_config["agent"]["instance_template"])
                    result = agent.run(task=instance["problem_statement"])
                    patch = result.get("submission") or ws.diff(Limits(timeout_s=30))
                print(f"{instance['instance_id']}: mini-swe-agent exit {result.get('exit_status')}, "
                      f"{agent.n_calls} model calls to crucible serve, {len(agent.messages)} messages")
                (out / f"{instance['instance_id']}.traj.json").write_text(json.dumps(agent.messages, indent=1))
                preds.append({"instance_id": instance["instance_id"], "model_name_or_path": spec, "model_patch": patch})
        finally:
            server.terminate()
            server.wait(timeout=30)
    (out / "preds.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    subprocess.run([args.crucible_python, "-m", "crucible", "swe", "grade", "--instances", str(root),
                    "--predictions", str(out / "preds.jsonl"), "--out", str(out / "graded"), "--no-progress"],
                   check=True)


if __name__ == "__main__":
    main()
