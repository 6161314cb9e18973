"""One code path for 1 process (CPU or GPU) and for `torchrun` (DDP or FSDP2).

`init()` reads torchrun's RANK / WORLD_SIZE / LOCAL_RANK (absent: world size 1, no process group),
picks the device and starts the process group (nccl on GPU, gloo on CPU). `wrap()` wraps the
training module: nothing at world size 1, DistributedDataParallel (without a buffer broadcast
before each forward: see `wrap`), or FSDP2 (`fully_shard` on each transformer layer, then on the
root). `no_sync()` skips gradient reduction on all but the last
micro-step of an accumulation. `full_state_dict()` gathers an FSDP2-sharded model for saving;
`broadcast_object()` hands rank 0's Python object (GRPO's rollouts) to every rank.

Not covered: tensor / pipeline parallelism, multi-node launch details beyond what torchrun does.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def master(self) -> bool:
        return self.rank == 0


def init(device: str = "auto") -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("device cuda asked for, but torch sees no GPU")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank, local_rank, world, dev)


def wrap(module: nn.Module, info: DistInfo, mode: str = "ddp") -> nn.Module:
    if info.world == 1:
        return module
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        # no buffer broadcast before each forward: the models' buffers are RoPE tables, computed
        # alike on every rank and grown on demand (a rank that ran a longer sequence alone, such as
        # GRPO's sampler on rank 0, holds a larger one, which a broadcast would fail on)
        return DDP(module, device_ids=[info.local_rank] if info.device.type == "cuda" else None,
                   broadcast_buffers=False)
    if mode == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for sub in module.modules():
            if isinstance(sub, nn.ModuleList):
                for layer in sub:
                    fully_shard(layer)
                break
        fully_shard(module)
        return module
    raise ValueError(f"unknown dist mode {mode!r}")


def no_sync(wrapped: nn.Module, sync: bool):
    """Context for one micro-step: gradients are reduced only when `sync` (the last micro-step)."""
    if hasattr(wrapped, "no_sync") and not sync:
        return wrapped.no_sync()                     # DDP
    if hasattr(wrapped, "set_requires_gradient_sync"):
        wrapped.set_requires_gradient_sync(sync)     # FSDP2
    return contextlib.nullcontext()


@contextlib.contextmanager
def unsharded(wrapped: nn.Module):
    """Outside forward, FSDP2 leaves the root's own parameters (embeddings, head) sharded; this
    gathers them for a direct call such as `model.hidden` in evaluation. No-op otherwise."""
    if hasattr(wrapped, "unshard") and hasattr(wrapped, "reshard"):
        wrapped.unshard()
        try:
            yield
        finally:
            wrapped.reshard()
    else:
        yield


def full_state_dict(wrapped: nn.Module) -> dict:
    """The unsharded state dict on CPU (every rank must call it under FSDP2)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    if hasattr(wrapped, "module"):      # DDP
        wrapped = wrapped.module
    return get_model_state_dict(wrapped, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def all_reduce_sum(values: list[float], info: DistInfo) -> list[float]:
    if info.world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return t.tolist()


def all_gather_lists(values: list, info: DistInfo) -> list:
    if info.world == 1:
        return values
    out = [None] * info.world
    dist.all_gather_object(out, values)
    return [v for part in out for v in part]


def broadcast_object(value, info: DistInfo, src: int = 0):
    """Rank `src`'s `value` (any picklable object) on every rank."""
    if info.world == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.world > 1:
        dist.barrier()


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
