"""torch.distributed set-up for runs launched by ``torchrun`` (env RANK / WORLD_SIZE).

NCCL on CUDA, Gloo on CPU. Each rank trains on its own slice of the global batch
(:class:`overnet.train.sampler.StepBatches`); DDP averages the gradients, so the
update equals one process's on the whole batch. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def setup(device: torch.device) -> DistInfo:
    """Join the process group described by the torchrun environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, False)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local_rank, True)


def teardown(info: DistInfo) -> None:
    if info.initialised_here and dist.is_initialized():
        dist.destroy_process_group()


def mean_across(value: float, info: DistInfo, device: torch.device) -> float:
    """Average a python float over ranks (every rank must call this)."""
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / info.world


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def failed_ranks(failed: bool, info: DistInfo, device: torch.device) -> list[int]:
    """The ranks whose ``failed`` is true, on every rank (every rank must call this).

    A small all-reduce of one flag per rank; it also synchronises like a barrier. Used
    after work only rank 0 does (validation, saving): if it fails there, every rank
    learns it at once and stops, instead of waiting in its next collective until the
    process group times out.
    """
    if not info.enabled:
        return [info.rank] if failed else []
    flags = torch.zeros(info.world, dtype=torch.int32, device=device)
    flags[info.rank] = int(failed)
    dist.all_reduce(flags)
    return [rank for rank, flag in enumerate(flags.tolist()) if flag]
