"""Scale out on Ray: the same pure work (sample, grade) on many machines, written by one driver.

Why Ray: it is what verl, OpenRLHF and SkyRL build on for exactly this (many nodes, each sampling
and verifying), it retries work lost with a dead worker, and it has a dashboard. crucible adds no
scheduler of its own; it keeps three rules that make a cluster run equal to a local one:

1. Work is pure. A Ray task grades a batch of programs in its own node's sandbox and returns the
   verdicts (`grading.py`); a Ray actor holds a model replica and returns generations
   (`sampling.py`). Neither writes a file, so running one twice (Ray retries a task whose worker
   died, `max_retries`) changes nothing.
2. Only the driver writes. Rows stream back (`fanout.fan_out`, `ray.wait` as each finishes) and the
   driver appends them through the same code as a local run (`crucible.grade.runner`, the eval
   sampler), keyed by the row's identity, so a row is written once and a killed driver resumes
   from its files exactly like a local run.
3. Verdicts come only from a sandbox. A node that cannot start bubblewrap answers `sandbox_error`
   (infrastructure, never the model's fault) for what it was given, never a verdict.

Ray is optional (`pip install 'crucible[ray]'`) and imported only when `--ray` is used;
`import_ray` names the extra when it is missing. `connect("auto" | "HOST:PORT")` joins a running
cluster (`ray start --head` on one node, `ray start --address HEAD:PORT` on the others): crucible
must be installed at the same version on every node (docs/scale.md).

Not covered: starting or autoscaling clusters (Ray's `ray up`/KubeRay do that), and training
(multi-node training stays on torchrun; docs/scale.md).
"""

from __future__ import annotations

from contextlib import contextmanager


class ScaleError(RuntimeError):
    """Ray is missing or the cluster cannot be reached; the message says what to do."""


def import_ray():
    """The `ray` module, or ScaleError naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise ScaleError("--ray needs Ray, an optional extra: pip install 'crucible[ray]' "
                         "(on the driver and on every node)") from None
    return ray


@contextmanager
def connect(address: str):
    """Join the Ray cluster at `address` ("auto": the one this machine belongs to) for the block.
    Stays out of the way when the caller already connected (tests, a notebook)."""
    ray = import_ray()
    why = unreachable(address)
    if why is None and ray.is_initialized():
        yield ray
        return
    if why is None:
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as e:
            why = str(e)
    if why is not None:
        raise ScaleError(f"cannot join the Ray cluster at {address!r}: {why}. Start one with "
                         "`ray start --head` (docs/scale.md)")
    try:
        yield ray
    finally:
        ray.shutdown()


def unreachable(address: str, timeout_s: float = 5.0) -> str | None:
    """Why nothing listens at HOST:PORT, or None. Checked first because `ray.init` retries a dead
    address for minutes before it gives up."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return None if address == "auto" else "expected auto or HOST:PORT"
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        return e.strerror or str(e)
    return None
