"""Sampling on a Ray cluster: a backend whose calls run on model replicas held by Ray actors.

`RayBackend(spec, replicas)` starts `replicas` actors (default: one per GPU, or one per node where
there are none), spread over the nodes; each loads the model spec on its own node (`native:`/`hf:`/
`vllm:` need the checkpoint at the same path on every node; `openai:` needs the URL reachable from
every node). A replica takes one GPU where the cluster has GPUs, but no CPU: grading tasks run on
the same nodes while replicas are alive, and would wait forever for CPUs a replica held. It is a
`crucible.generate` backend itself — `complete`, `chat`, `complete_many` where the replicas have it,
`concurrency` = the sum over replicas — so the eval sampler drives it unchanged: its threads call
the least busy replica, and the sampler alone appends rows to samples.jsonl (exactly once, resumable).

A replica whose process dies is restarted (it reloads the model) and the calls it held are
retried (`max_restarts`, `max_task_retries`); a call is a pure function of (prompt, params, seed),
so a retried one returns what the first would have. Not covered: streaming text (`on_text`) from
a replica, placing replicas on chosen nodes, and several GPUs per replica (tensor parallelism).

Shipped to a Ray task (pickled: the replicas' handles, not the models), it calls the replicas on
that task's node, or any replica when its node has none: `crucible swe run --ray` runs each agent
loop as a task that talks to the model next to it.
"""

from __future__ import annotations

import threading

from crucible.generate.types import BackendError
from crucible.scale import import_ray


class Replica:
    """Runs inside a Ray actor: one loaded backend, called by the driver's RayBackend."""

    def __init__(self, spec: str, options: dict):
        from crucible.generate.registry import load_backend

        self.backend = load_backend(spec, **options)

    def concurrency(self) -> int:
        return self.backend.concurrency

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def batches(self) -> bool:
        return hasattr(self.backend, "complete_many")

    def complete(self, prompt, n, params):
        return self.backend.complete(prompt, n, params)

    def chat(self, messages, n, params):
        return self.backend.chat(messages, n, params)

    def complete_many(self, prompts, params):
        return self.backend.complete_many(prompts, params)


class RayBackend:
    def __init__(self, spec: str, replicas: int | None = None, *, options: dict | None = None,
                 gpus_per_replica: float | None = None, max_restarts: int = 3):
        self.ray = ray = import_ray()
        self.spec = spec
        gpus = ray.cluster_resources().get("GPU", 0)
        if gpus_per_replica is None:
            gpus_per_replica = 1 if gpus and not spec.startswith("openai:") else 0
        if replicas is None:
            replicas = int(gpus // gpus_per_replica) if gpus_per_replica else sum(n["Alive"] for n in ray.nodes())
        # No CPU reserved: grading tasks need the CPUs while replicas are alive (a GPU, if any, is theirs).
        actor = ray.remote(Replica).options(num_cpus=0, num_gpus=gpus_per_replica, scheduling_strategy="SPREAD",
                                            max_restarts=max_restarts, max_task_retries=max_restarts,
                                            max_concurrency=64)
        self.replicas = [actor.remote(spec, options or {}) for _ in range(max(1, replicas))]
        try:
            widths = ray.get([r.concurrency.remote() for r in self.replicas])  # waits for every model to load
        except ray.exceptions.RayError as e:
            self.close()
            raise BackendError(f"a replica could not load {spec}: {getattr(e, 'cause', None) or e}") from None
        self.concurrency = sum(widths)
        self.nodes = ray.get([r.node.remote() for r in self.replicas])
        self.batching = all(ray.get([r.batches.remote() for r in self.replicas]))
        self._ready(range(len(self.replicas)))

    def _ready(self, preferred) -> None:
        self.preferred = list(preferred)  # the replicas calls go to (the least busy of them)
        self.busy = [0] * len(self.replicas)
        self.lock = threading.Lock()
        if self.batching:
            self.complete_many = self._complete_many

    def __getstate__(self) -> dict:
        return {"spec": self.spec, "replicas": self.replicas, "nodes": self.nodes, "concurrency": self.concurrency,
                "batching": self.batching}

    def __setstate__(self, state: dict) -> None:  # inside a Ray task: prefer the replicas of this node
        self.__dict__.update(state)
        self.ray = import_ray()
        here = self.ray.get_runtime_context().get_node_id()
        self._ready([i for i, node in enumerate(self.nodes) if node == here] or range(len(self.replicas)))

    def _call(self, method: str, *args):
        with self.lock:
            i = min(self.preferred, key=self.busy.__getitem__)
            self.busy[i] += 1
        try:
            return self.ray.get(getattr(self.replicas[i], method).remote(*args))
        finally:
            with self.lock:
                self.busy[i] -= 1

    def complete(self, prompt, n, params, on_text=None):
        return self._call("complete", prompt, n, params)

    def chat(self, messages, n, params, on_text=None):
        return self._call("chat", messages, n, params)

    def _complete_many(self, prompts, params):
        return self._call("complete_many", prompts, params)

    def close(self) -> None:
        for replica in self.replicas:
            self.ray.kill(replica)
        self.replicas = []
