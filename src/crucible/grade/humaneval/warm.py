"""Judges kept running across grading calls, for callers that grade a few samples again and again.

`grade` starts a pool's judges for one call and stops them at its end: right for an evaluation,
costly for RL, which grades a few dozen samples every step (a judge's start-up is most of a small
call). `JudgePool` starts `workers` long-lived threads, each owning one `pool.JudgeClient` for the
life of the pool: a judge dies with the thread that started it (PR_SET_PDEATHSIG), so the threads
must outlive the calls. Calls queue their samples to the shared threads and get their own verdicts
back; an abandoned call (an exception in the caller) drops its samples not yet started.
Use it as a context manager: leaving it stops the judges and removes their scratch directories.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

from crucible.grade import Verdict
from crucible.grade.humaneval.pool import JudgeClient, sweep_stale_dirs
from crucible.sandbox import Limits


class JudgePool:
    def __init__(self, limits: Limits, unsafe: bool = False, workers: int = 1, python_env=None):
        sweep_stale_dirs()
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.stopping = threading.Event()
        self.clients = [JudgeClient(limits, unsafe, self.stopping, python_env) for _ in range(max(1, workers))]
        self.threads = [threading.Thread(target=self._serve, args=(c,), daemon=True) for c in self.clients]
        for t in self.threads:
            t.start()

    def _serve(self, client: JudgeClient) -> None:
        try:
            while True:
                job = self.jobs.get()
                if job is None:
                    return
                key, problem, completion, done, abandoned = job
                if abandoned.is_set():
                    continue
                try:
                    verdict = client.grade(problem, completion)
                except Exception as e:  # never lose a sample: report it as infrastructure
                    client.close()
                    verdict = Verdict("sandbox_error", f"grading host error: {type(e).__name__}: {e}")
                done.put((key, verdict))
        finally:
            client.close()  # in this thread: the judge's parent-death signal follows its thread

    def grade(self, jobs: Iterable[tuple[str, dict, str]]) -> Iterator[tuple[str, Verdict]]:
        """Grade (key, problem, completion) jobs; yield (key, verdict) as they finish."""
        done: queue.SimpleQueue = queue.SimpleQueue()
        abandoned = threading.Event()
        pending = set()
        for key, problem, completion in jobs:
            pending.add(key)
            self.jobs.put((key, problem, completion, done, abandoned))
        try:
            while pending:
                try:
                    key, verdict = done.get(timeout=1.0)
                except queue.Empty:
                    if any(t.is_alive() for t in self.threads):
                        continue
                    key, verdict = next(iter(pending)), Verdict("sandbox_error", "its grader thread died")
                pending.discard(key)
                yield key, verdict
        finally:
            abandoned.set()

    def close(self) -> None:
        self.stopping.set()
        for _ in self.threads:
            self.jobs.put(None)
        for c in self.clients:  # stop a sample in progress now rather than at its deadline
            proc = c.proc
            if proc is not None:
                try:
                    proc.kill()
                except OSError:
                    pass
        for t in self.threads:
            t.join(timeout=10)

    def __enter__(self) -> JudgePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def grade(jobs: Iterable[tuple[str, dict, str]], workers: int, limits: Limits,
          unsafe: bool = False, python_env=None) -> Iterator[tuple[str, Verdict]]:
    """Grade (key, problem, completion) jobs on `workers` judges started for this call; yield (key,
    verdict) as they finish. `python_env` (crucible.sandbox.pyenv.PythonEnv): packages the candidates
    may import."""
    jobs = list(jobs)
    if jobs:
        with JudgePool(limits, unsafe, min(workers, len(jobs)), python_env) as pool:
            yield from pool.grade(jobs)
