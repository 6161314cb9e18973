"""A pool of unprivileged host uids, one leased per live sandbox.

The kernel exempts root from RLIMIT_NPROC, and counts processes per uid across the machine, so each
concurrent sandbox runs as its own uid (no passwd entry needed). Leases are `flock`s on files in a
shared directory, so separate crucible processes (parallel test workers, two evals) never share one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import tempfile
from pathlib import Path

FIRST_UID = 200_000
POOL_SIZE = 4096
LOCK_DIR = Path(tempfile.gettempdir()) / "crucible-uids"


@contextlib.contextmanager
def lease_uid():
    """Yield a uid no other live sandbox on this machine holds; as non-root, yield None (no switch)."""
    if os.geteuid() != 0:
        yield None
        return
    LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
    start = random.randrange(POOL_SIZE)
    for i in range(POOL_SIZE):
        uid = FIRST_UID + (start + i) % POOL_SIZE
        fd = os.open(LOCK_DIR / str(uid), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield uid
        finally:
            os.close(fd)
        return
    raise RuntimeError(f"all {POOL_SIZE} sandbox uids are in use")
