"""The grading host's side: a few judge processes, fed samples over pipes, results as they finish.

Each worker thread owns one judge process (judge.py) for the duration of `grade()`, sends it one
sample at a time as a JSON line, and waits for the verdict with a backstop deadline: a judge that
does not answer in time is killed (its sandbox dies with it) and the sample is a timeout; a judge
that crashes is restarted and the sample retried once before it is called `sandbox_error`.
Judges die with the host (PR_SET_PDEATHSIG), so a SIGKILLed run leaves no grader running.
"""

from __future__ import annotations

import json
import os
import queue
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
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


def grade(jobs: Iterable[tuple[str, dict, str]], workers: int, limits: Limits,
          unsafe: bool = False, python_env=None) -> Iterator[tuple[str, Verdict]]:
    """Grade (key, problem, completion) jobs on `workers` judges; yield (key, verdict) as they finish.
    `python_env` (crucible.sandbox.pyenv.PythonEnv): packages the candidates may import."""
    jobs = list(jobs)
    if not jobs:
        return
    sweep_stale_dirs()
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for job in jobs:
        todo.put(job)
    done: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()
    clients = [JudgeClient(limits, unsafe, stop, python_env) for _ in range(max(1, min(workers, len(jobs))))]

    def work(client: JudgeClient) -> None:
        try:
            while not stop.is_set():
                try:
                    key, problem, completion = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    verdict = client.grade(problem, completion)
                except Exception as e:  # never lose a sample: report it as infrastructure
                    client.close()
                    verdict = Verdict("sandbox_error", f"grading host error: {type(e).__name__}: {e}")
                done.put((key, verdict))
        finally:
            client.close()  # in this thread: the judge's parent-death signal follows its thread

    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    pending = {key for key, _, _ in jobs}
    try:
        while pending:
            try:
                key, verdict = done.get(timeout=1.0)
            except queue.Empty:
                if any(t.is_alive() for t in threads):
                    continue
                key, verdict = next(iter(pending)), Verdict("sandbox_error", "its grader thread died")
            pending.discard(key)
            yield key, verdict
    finally:
        stop.set()
        for c in clients:  # interrupted: stop the judges now rather than after their current sample
            proc = c.proc
            if proc is not None:
                try:
                    proc.kill()
                except OSError:
                    pass
        for t in threads:
            t.join(timeout=10)
