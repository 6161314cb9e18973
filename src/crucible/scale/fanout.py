"""Fan pure work out as Ray tasks and hand each result back to the driver as it finishes.

`fan_out(fn, items)` runs `fn(*shared, item)` as one Ray task per item (`num_cpus` each, retried
`max_retries` times when its worker process dies) and yields (item index, result) in the order the
tasks finish (`ray.wait`), so the driver writes rows while the rest is still running. At most
`in_flight` tasks are submitted at once (default: two per CPU slot in the cluster), which keeps
the object store small and lets a progress bar mean something. `shared` values (a suite, say)
are put in the object store once, not shipped with every item.

Exactly once: `fn` must be pure (no files, no side effects that matter twice): Ray may run an item
again after a worker died mid-task, but each item's result comes back once. The caller writes.
Not covered: retrying a task whose *code* raised (that is a bug or bad input; it propagates).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from crucible.scale import import_ray


def fan_out(fn: Callable, items: Iterable, *, shared: tuple = (), num_cpus: float = 1, num_gpus: float = 0,
            max_retries: int = 3, in_flight: int | None = None) -> Iterator[tuple[int, Any]]:
    """(index of the item, fn(*shared, item)) for each item, as each task finishes."""
    ray = import_ray()
    task = ray.remote(fn).options(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries,
                                  name=fn.__name__)
    if in_flight is None:
        slots = ray.cluster_resources().get("CPU", 1) / max(num_cpus, 1e-3)
        in_flight = max(2, int(2 * slots))
    shared_refs = [ray.put(value) for value in shared]
    todo = iter(enumerate(items))
    pending: dict = {}

    def submit():
        for index, item in todo:
            pending[task.remote(*shared_refs, item)] = index
            if len(pending) >= in_flight:
                return

    submit()
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), ray.get(ref)
            submit()
    finally:
        for ref in pending:  # the driver stopped early (an error, ^C): nothing more will be read
            ray.cancel(ref)
