"""Agent trajectories as SFT data (`crucible swe trajectories RUN --resolved-only --out traj.jsonl`).

Each agent run in RUN/run-*/trajectories.jsonl becomes one conversation `{"messages": [...]}`
(the format `crucible sft --data` reads): the system message, the task, then alternating assistant
commands and user observations, ending with the assistant's last command that ran (the submission
for a submitted run; trailing replies the loop rejected for their format are dropped). With --resolved-only only runs whose patch resolved its instance are kept; the
row also carries instance_id, run and exit_status for filtering.

Not covered: deduplicating near-identical trajectories across runs, or trimming failed steps from
a resolved run (they are part of how it got there).
"""

from __future__ import annotations

import json
from pathlib import Path

from crucible.io import atomic_write
from crucible.swe.agent import ACTION
from crucible.swe.grade import RESULTS
from crucible.swe.instances import read_jsonl
from crucible.swe.runs import TRAJECTORIES


def conversations(run: Path, *, resolved_only: bool) -> list[dict]:
    run = Path(run)
    out = []
    for d in sorted(p for p in run.glob("run-*") if p.is_dir()):
        resolved = {r["instance_id"]: r["resolved"] for r in read_jsonl(d / RESULTS)}
        for row in read_jsonl(d / TRAJECTORIES):
            if resolved_only and not resolved.get(row["instance_id"]):
                continue
            messages = list(row["messages"])
            # End on the last turn that ran a command: not on an observation, nor on replies the
            # agent loop rejected (they taught nothing and were never executed).
            while messages and (messages[-1]["role"] != "assistant" or len(ACTION.findall(messages[-1]["content"])) != 1):
                messages.pop()
            if len(messages) < 3:
                continue
            out.append({"messages": messages, "instance_id": row["instance_id"], "run": d.name,
                        "exit_status": row["exit_status"], "resolved": bool(resolved.get(row["instance_id"]))})
    return out


def write(rows: list[dict], path: Path) -> None:
    atomic_write(Path(path), "".join(json.dumps(row) + "\n" for row in rows))
