"""The candidate server: a long-lived Python inside the sandbox that forks one child per sample.

Started by the judge as `/usr/bin/python3 -I -S -B /harness/server.py CTRL_FD MODE WORKDIR` inside
bubblewrap (this file and codec.py are bound read-only at /harness). Forking a warm interpreter
costs about a millisecond, a new interpreter about 25 ms, a new bubblewrap about 2.5 ms more.

Control protocol (a SOCK_SEQPACKET socket from the judge; each message one encoded tuple):
  judge  -> server  ("run", cpu_seconds) with one fd attached: the child's end of a fresh channel
  judge  -> server  ("end",)   the sample is over: kill everything, clean up
  server -> judge   ("ready",) once, and ("done", exited, signal, code, cpu_s, clean) per "end"

The child receives the program over its own channel (the server never holds candidate code, so no
later child can find an earlier sample's code in the memory it inherits), runs it, and answers
calls with exact builtin values. Nothing the child says can make a sample pass: the judge decides.

After every sample, in MODE "pidns" (inside bubblewrap, where this process is not PID 1) the server
kills every other process in the PID namespace with kill(-1, SIGKILL), reaps them all (it is their
subreaper), and empties the writable dirs, so no daemon, file or socket outlives its sample. In
MODE "killpg" (--unsafe-no-sandbox) only the child's process group is killed: no isolation.
"""

import builtins
import ctypes
import os
import resource
import signal
import socket
import sys
import traceback

try:
    from crucible.grade.humaneval import codec
except ImportError:  # inside the sandbox: codec.py sits next to this file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import codec

PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
# Imported once here so each child inherits them warm (typing alone costs ~10 ms to import cold).
PRELOAD = ("typing", "math", "re", "collections", "itertools", "functools", "string", "hashlib",
           "heapq", "bisect", "statistics", "fractions", "random", "copy", "operator")
WRITABLE_DIRS = ("/dev/shm",)  # besides the work dir (/tmp in the sandbox)


def main() -> None:
    ctrl = socket.socket(fileno=int(sys.argv[1]))
    mode, workdir = sys.argv[2], sys.argv[3]
    os.chdir(workdir)  # children start here: /tmp in the sandbox (the only writable place, with /dev/shm)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # children may not ptrace us or open /proc/<us>/mem|fd
    if mode == "pidns":
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans are ours to reap
    for name in PRELOAD:
        __import__(name)
    baseline = process_state()
    send(ctrl, ("ready",))
    child = None
    while True:
        data, fds, _, _ = socket.recv_fds(ctrl, 4096, 1)
        if not data:
            return  # the judge is gone
        msg = codec.decode(data)
        if msg[0] == "run" and len(fds) == 1 and child is None:
            child = os.fork()
            if child == 0:
                try:
                    ctrl.close()
                    libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
                    run_candidate(fds[0], msg[1])
                finally:
                    os._exit(0)
            os.close(fds[0])
        elif msg[0] == "end" and child is not None:
            done = finish(child, mode, workdir)
            if process_state() != baseline:  # a child lowered our rlimits (prlimit) or priority
                done = done[:-1] + (False,)
            send(ctrl, ("done",) + done)
            child = None
        else:
            return  # protocol error: let the judge start a fresh sandbox


def send(sock: socket.socket, msg: tuple) -> None:
    sock.sendall(codec.encode(msg))


def finish(child: int, mode: str, workdir: str) -> tuple:
    """Kill what the sample left running, reap it, wipe writable dirs; how the child ended."""
    pid, status, usage = os.wait4(child, os.WNOHANG)
    exited = pid == child  # ended on its own before we killed it
    if mode == "pidns":
        try:
            os.kill(-1, signal.SIGKILL)  # everything in the namespace but PID 1 (bash) and us
        except ProcessLookupError:
            pass
        while True:  # reap the child and every orphan reparented to us
            try:
                pid, st, ru = os.wait4(-1, 0)
            except ChildProcessError:
                break
            if pid == child and not exited:
                status, usage = st, ru
    else:
        try:
            os.killpg(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if not exited:
            _, status, usage = os.wait4(child, 0)
    clean = all(wipe(d) for d in (workdir, *(WRITABLE_DIRS if mode == "pidns" else ())))
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    return exited, sig, code, round(usage.ru_utime + usage.ru_stime, 4), clean


def process_state() -> tuple:
    """What a same-uid child could change about this process from outside: rlimits, nice, CPUs."""
    limits = tuple(resource.getrlimit(getattr(resource, n)) for n in dir(resource) if n.startswith("RLIMIT_"))
    return limits, os.getpriority(os.PRIO_PROCESS, 0), os.sched_getaffinity(0)


def wipe(top: str, mode: int = 0o755) -> bool:
    """Empty `top`; False if something could not be removed (the judge then starts a fresh sandbox)."""
    try:
        os.chmod(top, mode)  # a child may have made it read-only
        with os.scandir(top) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if not wipe(entry.path, 0o700):
                        return False
                    os.rmdir(entry.path)
                else:
                    os.unlink(entry.path)
        return True
    except (OSError, RecursionError):
        return False


# ---- the child: one sample ------------------------------------------------------------------

def run_candidate(chan_fd: int, cpu_s: int) -> None:
    os.setsid()
    sys.modules["random"].seed()  # not the server's state: samples draw independent random numbers
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # what the program prints goes nowhere: it can never count
        os.dup2(null, fd)
    os.close(null)
    chan = socket.socket(fileno=chan_fd)
    kind, value = receive(chan)
    entry_point, source = value
    namespace = {"__name__": "__candidate__", "__builtins__": builtins}
    try:
        code = compile(source, "<candidate>", "exec")
    except BaseException as e:  # SyntaxError, ValueError (null bytes), MemoryError, RecursionError
        reply(chan, b"E", ("compile",) + describe(e))
        return
    try:
        exec(code, namespace)
        fn = namespace.get(entry_point)
        if not callable(fn):
            raise NameError(f"{entry_point} is not defined")
    except BaseException as e:
        reply(chan, b"E", ("load",) + describe(e))
        return
    reply(chan, b"L", None)
    while True:
        kind, value = receive(chan)
        if kind is None:
            return
        args, kwargs = value
        try:
            result = fn(*args, **kwargs)
        except BaseException as e:
            reply(chan, b"E", ("call",) + describe(e))
            continue
        try:
            payload = codec.encode(result, convert=stdlib_container)
        except BaseException as e:  # CodecError, RecursionError, MemoryError, hostile __iter__
            reply(chan, b"U", (type(result).__name__, str(e)[:200]))
            continue
        chan.sendall(codec.frame(b"R", payload))


def describe(e: BaseException) -> tuple:
    """(exception type name, message, line in the candidate's code) as plain strings."""
    try:
        name = str(type(e).__name__)
        message = str(e.msg if isinstance(e, SyntaxError) else e)[:300]
        lines = [f.lineno for f in traceback.extract_tb(e.__traceback__) if f.filename == "<candidate>"]
        if isinstance(e, SyntaxError) and e.lineno:
            lines.append(e.lineno)
        return name, message, lines[-1] if lines else 0
    except BaseException:
        return "Exception", "(unprintable exception)", 0


def stdlib_container(x):
    """Counter/OrderedDict/defaultdict compare to a dict as a dict would, a namedtuple to a tuple as a
    tuple would; send their plain contents (a rigged subclass gains nothing: only contents cross)."""
    import collections
    if type(x) in (collections.Counter, collections.OrderedDict, collections.defaultdict):
        return dict(dict.items(x))
    if isinstance(x, tuple) and type(x).__bases__ == (tuple,) and hasattr(type(x), "_fields"):
        return tuple(tuple.__iter__(x))
    return None


def reply(chan: socket.socket, kind: bytes, value) -> None:
    chan.sendall(codec.frame(kind, codec.encode(value)))


def receive(chan: socket.socket):
    header = recv_exact(chan, 4)
    if header is None:
        return None, None
    body = recv_exact(chan, codec.frame_length(header))
    if body is None:
        return None, None
    return body[:1], codec.decode(body[1:])


def recv_exact(chan: socket.socket, n: int):
    buf = bytearray()
    while len(buf) < n:
        chunk = chan.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


if __name__ == "__main__":
    main()
