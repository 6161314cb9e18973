"""A throw-away Ray cluster on this machine: a head and N-1 more nodes, for tests and benchmarks.

Each node is a `ray start --block` process started in its own session, with its own ports (a
free block found at start), one CPU (`--num-cpus`), a small object store and a private
`--temp-dir`, so it never meets another Ray on the machine. `stop()` ends exactly the processes of
these sessions (SIGTERM, then SIGKILL after a grace period) instead of `ray stop`, which would stop every
Ray process on the machine, and removes the temp dir. Use it as a context manager.

Addresses: nodes are started with --node-ip-address 127.0.0.1, but Ray on Linux registers a node
under the machine's own address (`ray._private.services.resolve_ip_for_localhost`); every socket
still belongs to this machine. Not covered: GPUs, several machines (docs/scale.md).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PORTS_PER_NODE = 40  # 8 service ports and a range for worker processes


def free_port_block(size: int) -> int:
    """A port P such that P .. P+size-1 could all be bound just now (retried at random)."""
    for _ in range(200):
        base = random.randrange(20_000, 60_000 - size)
        socks = []
        try:
            for port in range(base, base + size):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free block of ports found")


class LocalCluster:
    def __init__(self, nodes: int = 2, *, cpus_per_node: int = 1, object_store_mb: int = 80,
                 start_timeout_s: float = 180.0):
        self.nodes, self.cpus, self.store_mb, self.timeout_s = nodes, cpus_per_node, object_store_mb, start_timeout_s
        self.procs: list[subprocess.Popen] = []
        self.address = ""
        self.temp_dir = ""

    def __enter__(self) -> "LocalCluster":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.temp_dir = tempfile.mkdtemp(prefix="crucible-ray-")  # short: Ray's socket paths must fit 107 bytes
        base = free_port_block(PORTS_PER_NODE * self.nodes)
        self.address = f"127.0.0.1:{base}"
        try:
            for i in range(self.nodes):
                self.procs.append(self._start_node(i, base + i * PORTS_PER_NODE))
                if i == 0:
                    self._wait(lambda: self._listening(base), "the head's GCS port")
            self._wait(lambda: self.alive_nodes() >= self.nodes, f"{self.nodes} nodes")
        except BaseException:
            self.stop()
            raise

    def _start_node(self, i: int, port: int) -> subprocess.Popen:
        ports = {"--node-manager-port": port + 1, "--object-manager-port": port + 2,
                 "--dashboard-agent-listen-port": port + 3, "--dashboard-agent-grpc-port": port + 4,
                 "--runtime-env-agent-port": port + 5, "--metrics-export-port": port + 6,
                 "--min-worker-port": port + 10, "--max-worker-port": port + PORTS_PER_NODE - 1}
        role = (["--head", "--port", str(port), "--include-dashboard", "false", "--dashboard-port", str(port + 7)]
                if i == 0 else ["--address", self.address])
        argv = [str(Path(sys.executable).with_name("ray")), "start", "--block", *role,
                "--node-ip-address", "127.0.0.1", "--num-cpus", str(self.cpus),
                "--object-store-memory", str(self.store_mb << 20), "--temp-dir", self.temp_dir,
                "--disable-usage-stats", *(x for kv in ports.items() for x in (kv[0], str(kv[1])))]
        src = str(Path(__file__).resolve().parents[2])  # the crucible the workers import = the driver's
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", OMP_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p))
        log = open(Path(self.temp_dir) / f"node-{i}.log", "wb")
        with log:
            return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def _listening(self, port: int) -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not ready():
            dead = [i for i, p in enumerate(self.procs) if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                log = (Path(self.temp_dir) / f"node-{dead[0] if dead else 0}.log").read_text(errors="replace")
                raise RuntimeError(f"Ray cluster: no {what} after {self.timeout_s:.0f} s; log:\n{log[-3000:]}")
            time.sleep(0.5)

    def alive_nodes(self) -> int:
        """Nodes the head counts alive (connects this process to the cluster as a driver)."""
        import ray

        if not ray.is_initialized():
            ray.init(address=self.address, logging_level="ERROR", log_to_driver=False)
        return sum(1 for n in ray.nodes() if n["Alive"])

    def pids(self, title_prefix: str = "") -> list[int]:
        """Live processes of this cluster whose command line starts with `title_prefix` (Ray
        titles a worker "ray::<task name>" while it runs a task)."""
        sessions = {p.pid for p in self.procs}  # workers change process group, not session
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.getsid(int(entry.name)) not in sessions:
                    continue
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, ProcessLookupError):
                continue
            if cmdline.startswith(title_prefix):
                found.append(int(entry.name))
        return found

    def stop(self, grace_s: float = 5.0) -> None:
        """End every process of this cluster (and only those), then remove its temp dir."""
        try:
            import ray
            if ray.is_initialized():
                ray.shutdown()
        except ImportError:
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline:
                for p in self.procs:
                    p.poll()  # reaps a leader that exited, so it no longer counts
                if not self.pids():
                    break
                time.sleep(0.2)
        for p in self.procs:
            p.wait()
        self.procs = []
        shutil.rmtree(self.temp_dir, ignore_errors=True)
