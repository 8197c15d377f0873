"""The one distributed set-up for training and evaluation under ``torchrun``: join the process group its
environment describes (gloo on CPU, NCCL on CUDA), pick this process's device, share objects from rank 0.

    torchrun --nproc_per_node=2 tools/train.py ...            # training (yolokit.engine.trainer)
    torchrun --nproc_per_node=2 -m yolokit eval ...           # evaluation (yolokit.eval.distributed shards)

Outside torchrun (no ``WORLD_SIZE``, or 1) everything is a no-op: rank 0 of a world of 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``attempt`` counts the elastic restarts of the whole job (0 at first)."""

    rank: int = 0
    local_rank: int = 0
    world: int = 1
    attempt: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def env() -> DistInfo:
    """(rank, local_rank, world_size) from torchrun's environment; 1 process without it."""
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                    int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0)))


def resolve_device(name) -> torch.device:
    """The training device: ``--device`` resolved and checked as every command does
    (:func:`yolokit.settings.resolve_device`: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``N``, ``mps``); under torchrun
    a CUDA process takes the GPU of its ``LOCAL_RANK``. A device this machine lacks is a :class:`ConfigError`."""
    from yolokit.settings import resolve_device as resolve_name

    device = torch.device(resolve_name(str(name)))
    if device.type == "cuda":
        info = env()
        if info.world > 1:
            device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    return device


def init_from_env(device="cpu") -> DistInfo:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1) if not joined yet: gloo for CPU, NCCL for
    CUDA (``device``: a name or a torch.device). Returns this process's :class:`DistInfo`; ``world > 1``
    means a group of several processes is active."""
    import torch.distributed as dist

    info = env()
    if not dist.is_available():
        return DistInfo()
    if info.world <= 1:
        if dist.is_initialized():  # a group set up by the caller
            return DistInfo(dist.get_rank(), info.local_rank, dist.get_world_size(), info.attempt)
        return info
    if dist.is_initialized():
        return info
    cuda = torch.device(str(device) if str(device) != "auto" else
                        ("cuda" if torch.cuda.is_available() else "cpu")).type == "cuda"
    if cuda:
        torch.cuda.set_device(info.local_rank)
    backend = "nccl" if cuda else "gloo"
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        # torchrun's workers meet in the rendezvous store, which outlives a restart, and torch keys the
        # process group's addresses without the attempt: the restarted workers can read the addresses of the
        # killed ones (gloo: "connectFullMesh failed ... Connection refused"). A per-attempt prefix avoids
        # that. The attempt is counted in the store, not read from TORCHELASTIC_RESTART_COUNT, which is per
        # agent: a node whose workers did not fail restarts them without counting (pytorch#108158).
        from datetime import timedelta

        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                              timeout=timedelta(minutes=30))
        attempt = (store.add("yolokit/workers", 1) - 1) // info.world
        dist.init_process_group(backend, store=dist.PrefixStore(f"yolokit/attempt_{attempt}/", store),
                                rank=info.rank, world_size=info.world)
        return DistInfo(info.rank, info.local_rank, info.world, attempt)
    dist.init_process_group(backend)
    return info


def broadcast_object(value, world: int):
    """Rank 0's ``value`` on every rank (a picklable object; no-op in one process)."""
    if world == 1:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, 0)
    return box[0]


def broadcast_flag(flag: bool, world: int, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every rank (one small tensor; no-op in one process)."""
    if world == 1:
        return flag
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.broadcast(t, 0)
    return bool(t.item())


def barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
