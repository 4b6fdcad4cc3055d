"""Data parallelism under ``torchrun``: the process group, the device of each rank, the few reductions.

``torchrun --nproc_per_node N -m mixbridge ...`` (or ``python -m torch.distributed.run``)
sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; :func:`setup` then joins the process
group (``gloo`` on CPU, ``nccl`` on CUDA) and :class:`~mixbridge.models.training.Trainer`
wraps the task's model in ``torch.nn.parallel.DistributedDataParallel``, which averages
the gradients of the ranks' batches in every backward pass. Without those variables
(a plain ``python`` run) nothing here communicates and the trainer runs alone.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .data import TrainConfigError


@dataclass(frozen=True)
class World:
    """This process's place: ``rank`` of ``size`` processes, ``device`` its torch device string."""

    rank: int = 0
    size: int = 1
    device: str = "cpu"

    @property
    def distributed(self) -> bool:
        """True when more than one process trains."""
        return self.size > 1

    @property
    def main(self) -> bool:
        """True on the rank that writes logs and checkpoints (rank 0)."""
        return self.rank == 0


def setup(device: str = "cpu") -> World:
    """Join the ``torchrun`` process group if there is one; returns this process's :class:`World`.

    ``device`` is ``cpu`` or ``cuda`` (each rank takes ``cuda:LOCAL_RANK``).

    Raises:
        TrainConfigError: another device name, or ``cuda`` without a CUDA device.
    """
    if device not in ("cpu", "cuda"):
        raise TrainConfigError(f"device = {device!r}; use cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainConfigError("device = 'cuda' but torch sees no CUDA device; use --device cpu")
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(0, 1, device)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), device)


def sum_floats(world: World, values: list[float]) -> list[float]:
    """``values`` summed over the ranks (float64; unchanged with one process)."""
    if not world.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=world.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def any_true(world: World, flag: bool) -> bool:
    """True if ``flag`` is true on any rank (so every rank takes the same branch)."""
    if not world.distributed:
        return flag
    t = torch.tensor([int(flag)], device=world.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def broadcast_buffers(world: World, model: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP broadcasts them before each forward pass, so after the last step each rank's
    statistics hold its own batch; validation and checkpoints must see one set.
    """
    if world.distributed:
        for buf in model.buffers():
            dist.broadcast(buf, src=0)


def barrier(world: World) -> None:
    """Wait for every rank (no-op with one process)."""
    if world.distributed:
        dist.barrier()
