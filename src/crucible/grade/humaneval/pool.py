"""The grading host's side of one judge process (judge.py), fed samples over a pipe.

A `JudgeClient` (one per worker thread of a `warm.JudgePool`) owns one judge process, sends it one
sample at a time as a JSON line, and waits for the verdict with a backstop deadline: a judge that
does not answer in time is killed (its sandbox dies with it) and the sample is a timeout; a judge
that crashes is restarted and the sample retried once before it is called `sandbox_error`.
Judges die with the host (PR_SET_PDEATHSIG), so a SIGKILLed run leaves no grader running.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

from crucible.grade import Verdict
from crucible.sandbox import Limits

JUDGE_SLACK_S = 30.0  # sandbox restarts and the judge's own work, on top of two sample deadlines
BASE_PREFIX = "crucible-judge-"  # + host pid: a judge's scratch dir, removed by close()


def sweep_stale_dirs() -> None:
    """Remove scratch dirs left by grading hosts that were SIGKILLed (their pid is gone)."""
    for d in Path(tempfile.gettempdir()).glob(f"{BASE_PREFIX}*-*"):
        try:
            os.kill(int(d.name[len(BASE_PREFIX):].split("-")[0]), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except (ValueError, PermissionError):
            continue


class JudgeClient:
    """One judge process, started on first use and restarted after a crash or a hang."""

    def __init__(self, limits: Limits, unsafe: bool, stopping: threading.Event | None = None,
                 python_env=None):
        self.limits, self.unsafe, self.python_env = limits, unsafe, python_env
        self.stopping = stopping or threading.Event()
        self.proc: subprocess.Popen | None = None
        self.base: Path | None = None
        self.buf = b""

    def _start(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix=f"{BASE_PREFIX}{os.getpid()}-"))
        os.chmod(self.base, 0o711)  # the sandbox uid must reach its work dir inside, not list others
        config = {"limits": asdict(self.limits), "unsafe": self.unsafe, "base": str(self.base),
                  "parent": os.getpid(), "python_env": str(self.python_env.root) if self.python_env else None}
        self.proc = subprocess.Popen([sys.executable, "-m", "crucible.grade.humaneval.judge", json.dumps(config)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
        self.buf = b""

    def grade(self, problem: dict, completion: str) -> Verdict:
        for attempt in range(2):
            if self.stopping.is_set():
                break
            if self.proc is None:
                self._start()
            reply = self._ask({"problem": problem, "completion": completion},
                              2 * self.limits.deadline_s + JUDGE_SLACK_S)
            if reply == "timeout":
                self.close()
                return Verdict("timeout", "the judge did not finish in time")
            if reply is not None:
                return Verdict(reply["status"], reply["detail"], reply["wall_s"])
            self.close()
        return Verdict("sandbox_error", "interrupted" if self.stopping.is_set() else "the judge process crashed twice")

    def _ask(self, job: dict, timeout: float):
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            return None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            if not select.select([fd], [], [], left)[0]:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            return None

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()  # a judge between samples exits on EOF and cleans up
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()  # its sandbox dies with it (--die-with-parent)
                self.proc.wait()
            self.proc.stdout.close()
            self.proc = None
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None
