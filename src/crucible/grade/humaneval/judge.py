"""The judge: HumanEval's trusted test code, run against a proxy of the candidate's function.

One judge process per grading worker (`python -m crucible.grade.humaneval.judge CONFIG`, JSON lines
in and out; see pool.py). It owns one sandboxed candidate server (server.py) and, per sample:

1. sends the program (prompt + completion) to a freshly forked child in the sandbox, which defines it;
2. runs the prompt's own helpers (`poly`, `encode_cyclic`, ...) and the task's `check` *here*, with
   the entry point bound to `CandidateProxy`: each call crosses a socket, and only exact builtin
   values come back (codec.py). Expected values never enter the candidate's process, and nothing
   the candidate prints, exits with, patches or writes can reach this process;
3. passes the sample only if `check(proxy)` returned and no call was spoiled (protocol violation,
   SystemExit, unencodable result) -- whatever the test code caught.

Deadlines: the child has RLIMIT_CPU (stable under load); the judge enforces the wall deadline, and on
expiry or any protocol violation kills the whole sandbox and starts a fresh one for the next sample.
The test side's own CPU is bounded by ITIMER_PROF. A server that dies during a sample is retried once
in a fresh sandbox; dying again is the candidate's failure. A sandbox that cannot start twice in a
row is `sandbox_error`.

Not covered: the judge trusts the dataset's test code (it is not sandboxed; it only ever sees
builtin values), and it has no memory limit of its own beyond the codec's size caps.
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from crucible.grade.humaneval import codec
from crucible.languages.python import launch
from crucible.sandbox import Limits, bwrap_argv, kill_sandbox, limited_argv, spawn
from crucible.sandbox.pyenv import load as load_env
from crucible.sandbox.uids import lease_uid

HERE = Path(__file__).resolve().parent
HARNESS = "/harness"           # where server.py and codec.py are bound, read-only, in the sandbox
SERVER_FILES = ("server.py", "codec.py")
SERVER_CPU_S = 7 * 24 * 3600   # the server's own lifetime CPU; each child gets limits.timeout_s
START_TIMEOUT_S = 20.0
END_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1
BUILTIN_EXCEPTIONS = {n: c for n, c in vars(builtins).items()
                      if isinstance(c, type) and issubclass(c, Exception)}


class Abort(BaseException):
    """Ends the test early; BaseException so test code's `except Exception` cannot swallow it."""

    def __init__(self, status: str, detail: str, kill: bool = False):
        super().__init__(detail)
        self.verdict, self.kill = (status, detail), kill


class ServerLost(Exception):
    """The sandbox server died, hung or could not start."""

    def __init__(self, detail: str, started: bool):
        super().__init__(detail)
        self.started = started


class JudgeTimeout(BaseException):
    pass


class CandidateError(Exception):
    """A builtin exception of the candidate's that cannot be rebuilt from its message alone."""


# ---- the sandboxed candidate server ---------------------------------------------------------

class Sandbox:
    """One candidate server in bubblewrap, with a leased uid and a private work dir; restartable."""

    def __init__(self, limits: Limits, unsafe: bool, base: Path, python_env=None):
        self.limits, self.unsafe, self.base = limits, unsafe, base
        self.python_env = python_env  # crucible.sandbox.pyenv.PythonEnv: packages the candidate may import
        self.proc = None
        self.harness = base / "harness"  # a copy the unprivileged uid can read, wherever the checkout is
        if not self.harness.exists():
            self.harness.mkdir(mode=0o755)
            for name in SERVER_FILES:
                shutil.copyfile(HERE / name, self.harness / name)
                os.chmod(self.harness / name, 0o644)

    @property
    def running(self) -> bool:
        return self.proc is not None

    def start(self) -> None:
        self.stack = contextlib.ExitStack()
        uid = self.stack.enter_context(lease_uid())
        self.workdir = Path(tempfile.mkdtemp(prefix="work-", dir=self.base))
        if self.unsafe and uid is not None:
            os.chown(self.workdir, uid, uid)  # unsafe: the candidate works here
        elif not self.unsafe:
            os.chmod(self.workdir, 0o555)  # sandboxed: /sandbox stays empty and read-only, no host disk
        self.ctrl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        report_fd = os.open(os.devnull, os.O_WRONLY)
        self.stderr = tempfile.TemporaryFile(dir=self.base)
        lim = self.limits
        server_limits = Limits(timeout_s=SERVER_CPU_S, memory_mb=lim.memory_mb, max_procs=lim.max_procs,
                               max_file_mb=lim.max_file_mb, max_open_files=lim.max_open_files)
        python, env_binds, env_vars = launch(self.python_env, self.unsafe, "-B")
        if self.unsafe:
            argv = limited_argv([*python, str(self.harness / "server.py"), str(theirs.fileno()), "killpg",
                                 str(self.workdir)], server_limits, report_fd)
        else:
            binds = [(str(self.harness / n), f"{HARNESS}/{n}") for n in SERVER_FILES]
            prefix = bwrap_argv(self.workdir, ro_binds=binds + env_binds)
            assert prefix[-1] == "--"
            argv = prefix[:-1] + ["--as-pid-1", "--"] + limited_argv(  # bash is PID 1:
                [*python, f"{HARNESS}/server.py", str(theirs.fileno()), "pidns", "/tmp"],  # kill(-1) spares it
                server_limits, report_fd)
        kw = dict(cwd=self.workdir, home=str(self.workdir)) if self.unsafe else {}
        if uid is not None:
            kw.update(user=uid, group=uid, extra_groups=[])
        try:  # spawn: the judge's own environment (API keys...) stays out of the sandbox
            self.proc = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr,
                              pass_fds=(theirs.fileno(), report_fd), start_new_session=True, env=env_vars, **kw)
        except OSError as e:
            self.stop()
            raise ServerLost(f"could not start the sandbox: {e}", started=False) from None
        finally:
            theirs.close()
            os.close(report_fd)
        try:
            msg = self._recv(START_TIMEOUT_S)
        except ServerLost as e:
            why = self._stderr_tail() or str(e)
            self.stop()
            raise ServerLost(f"sandbox did not start: {why}", started=False) from None
        if msg != ("ready",):
            self.stop()
            raise ServerLost(f"sandbox said {msg!r} instead of ready", started=False)

    def begin(self, cpu_s: int) -> socket.socket:
        """Fork a child for one sample; the judge's end of its private channel."""
        mine, theirs = socket.socketpair()
        try:
            socket.send_fds(self.ctrl, [codec.encode(("run", cpu_s))], [theirs.fileno()])
        except OSError as e:
            mine.close()
            raise ServerLost(f"sandbox server gone: {e}", started=True) from None
        finally:
            theirs.close()
        return mine

    def end(self) -> tuple:
        """Kill what the sample left and clean up; (exited, signal, code, cpu_s, clean) of the child."""
        try:
            self.ctrl.sendall(codec.encode(("end",)))
        except OSError as e:
            raise ServerLost(f"sandbox server gone: {e}", started=True) from None
        msg = self._recv(END_TIMEOUT_S)
        ok = (type(msg) is tuple and len(msg) == 6 and msg[0] == "done"
              and [type(v) for v in msg[1:]] == [bool, int, int, float, bool])
        if not ok:
            raise ServerLost(f"sandbox server said {msg!r}", started=True)
        if not msg[5]:
            self.stop()  # something could not be wiped: the next sample gets a fresh sandbox
        return msg[1:]

    def _recv(self, timeout: float):
        self.ctrl.settimeout(timeout)
        try:
            data = self.ctrl.recv(65536)
        except OSError as e:  # socket.timeout included
            raise ServerLost(f"sandbox server did not answer ({e or 'timeout'})", started=True) from None
        if not data:
            raise ServerLost("sandbox server exited", started=True)
        try:
            return codec.decode(data)
        except codec.CodecError as e:
            raise ServerLost(f"sandbox server sent garbage: {e}", started=True) from None

    def _stderr_tail(self) -> str:
        try:
            self.stderr.seek(0)
            return self.stderr.read()[-500:].decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""

    def stop(self) -> None:
        """Kill the whole sandbox (every process in it) and release its uid and work dir."""
        if self.proc is not None:
            kill_sandbox(self.proc)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None
        for closeable in ("ctrl", "stderr"):
            if getattr(self, closeable, None) is not None:
                getattr(self, closeable).close()
                setattr(self, closeable, None)
        if getattr(self, "workdir", None) is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        if getattr(self, "stack", None) is not None:
            self.stack.close()
            self.stack = None


class Channel:
    """Framed messages to and from one child, every wait bounded by the sample's wall deadline."""

    def __init__(self, sock: socket.socket, deadline: float, deadline_s: float):
        self.sock, self.deadline, self.deadline_s = sock, deadline, deadline_s

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Abort("timeout", f"wall deadline {self.deadline_s:g}s", kill=True)
        return left

    def send(self, kind: bytes, payload: bytes) -> None:
        try:
            self.sock.settimeout(self._left())
            self.sock.sendall(codec.frame(kind, payload))
        except socket.timeout:
            raise Abort("timeout", f"wall deadline {self.deadline_s:g}s", kill=True) from None
        except OSError:
            raise Abort("gone", "") from None

    def recv(self) -> tuple[bytes, object]:
        try:
            n = codec.frame_length(self._exact(4))
            body = self._exact(n)
            return body[:1], codec.decode(body[1:])
        except codec.CodecError as e:
            raise Abort("runtime_error", f"broke the wire protocol: {e}", kill=True) from None

    def _exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                self.sock.settimeout(self._left())
                chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            except socket.timeout:
                raise Abort("timeout", f"wall deadline {self.deadline_s:g}s", kill=True) from None
            except OSError:
                chunk = b""
            if not chunk:
                raise Abort("gone", "")
            buf += chunk
        return bytes(buf)


class CandidateProxy:
    """What the test calls instead of the candidate's function; every call crosses to the sandbox."""

    def __init__(self, channel: Channel, name: str):
        self.channel, self.__name__ = channel, name
        self.spoiled = None   # (status, detail): this sample can no longer pass
        self.raised = None    # the last exception re-raised on the candidate's behalf
        self.raised_verdict = None
        self.calls = 0

    def __call__(self, *args, **kwargs):
        if self.spoiled:
            raise Abort(*self.spoiled)
        self.calls += 1
        try:
            payload = codec.encode((args, kwargs))
        except codec.CodecError as e:
            self._spoil("sandbox_error", f"the test passed an argument that cannot cross: {e}")
        try:
            self.channel.send(b"C", payload)
            kind, value = self.channel.recv()
        except Abort as e:
            self.spoiled = e.verdict
            raise
        if kind == b"R":
            return value
        if kind == b"E" and _is_error(value) and value[0] == "call":
            _, name, message, line = value
            raise self._reraise(name, message, line)
        if kind == b"U" and type(value) is tuple and len(value) == 2 and all(type(v) is str for v in value):
            self._spoil("wrong_answer", f"unacceptable return value: {value[1]}")
        self._spoil("runtime_error", "broke the wire protocol: unexpected reply")

    def _spoil(self, status: str, detail: str):
        self.spoiled = (status, detail)
        raise Abort(status, detail)

    def _reraise(self, name: str, message: str, line: int) -> BaseException:
        where = f" (line {line} of prompt + completion)" if line else ""
        self.raised_verdict = ("memory" if name == "MemoryError" else "runtime_error",
                               f"{name}{': ' + message if message else ''}{where}"[:300])
        cls = BUILTIN_EXCEPTIONS.get(name)
        if cls is None:  # SystemExit, KeyboardInterrupt, the candidate's own classes: no test expects these
            self._spoil(*self.raised_verdict)
        try:
            exc = cls(message)
        except Exception:  # e.g. UnicodeDecodeError wants five arguments
            exc = CandidateError(f"{name}: {message}")
        self.raised = exc
        return exc


def _is_error(value) -> bool:
    return (type(value) is tuple and len(value) == 4 and all(type(v) is str for v in value[:3])
            and type(value[3]) is int)


@contextlib.contextmanager
def cpu_budget(seconds: float):
    """Raise JudgeTimeout once this process has spent `seconds` of CPU (not wall) inside the block."""
    def expire(signum, frame):
        raise JudgeTimeout()
    old = signal.signal(signal.SIGPROF, expire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)


# ---- grading one sample ---------------------------------------------------------------------

@dataclass
class Task:
    task_id: str
    entry_point: str
    prompt: str
    prompt_code: object
    test_code: object
    test_lines: list[str]


class Judge:
    def __init__(self, limits: Limits, unsafe: bool, base: Path, python_env=None):
        self.limits = limits
        self.cpu_s = max(1, int(limits.timeout_s + 0.999))
        self.sandbox = Sandbox(limits, unsafe, base, python_env)
        self.tasks: dict[str, Task] = {}

    def task(self, problem: dict) -> Task:
        key = hashlib.sha256(json.dumps([problem[k] for k in ("task_id", "prompt", "test", "entry_point")])
                             .encode()).hexdigest()
        if key not in self.tasks:
            tid = problem["task_id"]
            self.tasks[key] = Task(tid, problem["entry_point"], problem["prompt"],
                                   compile_prompt(problem["prompt"], tid),
                                   compile(problem["test"], f"<test {tid}>", "exec"),
                                   problem["test"].splitlines())
        return self.tasks[key]

    def grade(self, problem: dict, completion: str) -> tuple[str, str, float]:
        start = time.monotonic()
        task = self.task(problem)
        for attempt in range(2):
            try:
                status, detail = self._attempt(task, task.prompt + completion + "\n")
                break
            except ServerLost as e:
                self.sandbox.stop()
                if attempt:
                    status, detail = (("runtime_error", f"the program killed its sandbox ({e})") if e.started
                                      else ("sandbox_error", str(e)))
        return status, detail[:300], round(time.monotonic() - start, 4)

    def _attempt(self, task: Task, program: str) -> tuple[str, str]:
        try:
            program_message = codec.encode((task.entry_point, program))
        except codec.CodecError as e:
            return "compile_error", f"the program cannot be sent: {e}"
        if not self.sandbox.running:
            self.sandbox.start()
        chan = Channel(self.sandbox.begin(self.cpu_s), time.monotonic() + self.limits.deadline_s,
                       self.limits.deadline_s)
        kill = False
        try:
            chan.send(b"P", program_message)
            kind, value = chan.recv()
            if kind == b"L" and value is None:
                verdict = self._check(task, CandidateProxy(chan, task.entry_point))
            elif kind == b"E" and _is_error(value) and value[0] in ("compile", "load"):
                verdict = load_failure(*value)
            else:
                raise Abort("runtime_error", "broke the wire protocol: unexpected reply", kill=True)
        except Abort as e:
            verdict, kill = e.verdict, e.kill
        finally:
            chan.sock.close()
        if kill:  # deadline or protocol violation: nothing in that sandbox is trusted to stop
            self.sandbox.stop()
            return verdict
        report = self.sandbox.end()
        return died(report, self.cpu_s) if verdict[0] == "gone" else verdict

    def _check(self, task: Task, proxy: CandidateProxy) -> tuple[str, str]:
        ns = {"__name__": "__judge__", "__builtins__": builtins}
        exec(task.prompt_code, ns)  # the prompt's helpers run here, not in the candidate's process
        exec(task.test_code, ns)
        ns[task.entry_point] = proxy
        try:
            with cpu_budget(self.limits.timeout_s + 2):
                ns["check"](proxy)
        except Abort as e:
            if e.kill:
                raise
            return proxy.spoiled or e.verdict
        except JudgeTimeout:
            return proxy.spoiled or ("timeout", "the test's side ran out of CPU on the returned values")
        except BaseException as e:
            if proxy.spoiled:
                return proxy.spoiled
            if e is proxy.raised:
                return proxy.raised_verdict
            where = failing_line(e, task)
            if isinstance(e, AssertionError):
                return "wrong_answer", f"{where}{': ' + str(e) if str(e) else ''}"
            return "wrong_answer", f"{type(e).__name__}: {e} ({where})"
        if proxy.spoiled:  # the test swallowed the Abort
            return proxy.spoiled
        return "pass", ""


def compile_prompt(prompt: str, task_id: str):
    """The prompt's code for the judge's side (its helpers); a prompt that stops right after the
    `def` line gets a `pass` body so its helpers still count."""
    for source in (prompt, prompt + "    pass\n"):
        try:
            return compile(source, f"<prompt {task_id}>", "exec")
        except SyntaxError:
            continue
    raise ValueError(f"{task_id}: the prompt is not valid Python, even with a `pass` body")


def failing_line(e: BaseException, task: Task) -> str:
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == f"<test {task.task_id}>"]
    if not frames or not 0 < frames[-1].lineno <= len(task.test_lines):
        return "test failed"
    return task.test_lines[frames[-1].lineno - 1].strip()[:200]


def load_failure(stage: str, name: str, message: str, line: int) -> tuple[str, str]:
    where = f" (line {line} of prompt + completion)" if line else ""
    message = f": {message}" if message else ""
    if stage == "compile":
        return "compile_error", f"{name}{message}{where}"
    status = "memory" if name == "MemoryError" else "runtime_error"
    return status, f"{name} while defining the program{message}{where}"


def died(report: tuple, cpu_s: int) -> tuple[str, str]:
    """Why the child stopped answering, from the server's account of how it ended."""
    exited, sig, code, cpu, _clean = report
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= 0.9 * cpu_s):  # soft, hard RLIMIT_CPU
        return "timeout", f"CPU limit {cpu_s}s"
    if sig == signal.SIGXFSZ:
        return "output_limit", "file size limit"
    if sig == signal.SIGKILL and not exited:  # we killed it: it had stopped answering, still alive
        return "runtime_error", "closed its channel instead of returning"
    if sig:
        return "runtime_error", f"killed by {signal.Signals(sig).name}" if sig in signal.valid_signals() else f"signal {sig}"
    return "runtime_error", f"exited with code {code} instead of returning"


# ---- the judge process ----------------------------------------------------------------------

def main() -> int:
    config = json.loads(sys.argv[1])
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the grading host died: so do we
    if os.getppid() != config["parent"]:
        return 1
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # stray prints go to stderr, never into the replies
    limits = Limits(**config["limits"])
    python_env = load_env(config["python_env"]) if config.get("python_env") else None
    judge = Judge(limits, config["unsafe"], Path(config["base"]), python_env)
    try:
        for line in sys.stdin:
            job = json.loads(line)
            try:
                status, detail, wall = judge.grade(job["problem"], job["completion"])
            except Exception as e:  # a bug here must not take the run down: report it as infrastructure
                status, detail, wall = "sandbox_error", f"judge error: {type(e).__name__}: {e}", 0.0
                judge.sandbox.stop()
            replies.write(json.dumps({"status": status, "detail": detail, "wall_s": wall}) + "\n")
            replies.flush()
    finally:
        judge.sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
