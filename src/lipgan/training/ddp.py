"""Multi-process training on torch.distributed: `torchrun --nproc_per_node=N -m lipgan train ...`.

gloo on CPU, NCCL on GPU. D and G are wrapped in DistributedDataParallel, whose gradient all-reduce averages
the per-rank batch means, so one update on a global batch split across ranks equals the update of one process
on the whole batch. Rank 0 alone writes logs and checkpoints.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group torchrun describes in the environment; a single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def wrap(module: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    if not info.enabled:
        return module
    # Gradients produced through a double backward can have strides that differ from DDP's buckets; DDP
    # copies them correctly and only warns about speed, once per layer per step.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper, or the module itself."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def broadcast_object(obj, info: DistInfo):
    """Rank 0's `obj` on every rank (e.g. the run directory rank 0 created)."""
    if not info.enabled:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank when `flag` is true on any: the ranks stop at the same step after a signal."""
    if not info.enabled:
        return flag
    value = torch.tensor([int(flag)], device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
