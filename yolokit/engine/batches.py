"""The batches a run trains on: a subset of a dataset, and each epoch's loader (seeded, so that a resumed run
replays the epochs of an uninterrupted one)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from yolokit.settings import TrainConfig


def subset(dataset, n: int):
    """The first ``n`` images of a DetectionDataset (a shallow copy sharing the records); all when n == 0."""
    if not n or n >= len(dataset):
        return dataset
    import copy

    sub = copy.copy(dataset)
    sub.records = dataset.records[:n]
    return sub


def loader_workers(device: torch.device) -> int:
    """DataLoader worker processes when ``--workers`` is not given. On CUDA the CPU only loads, so up to 8 workers
    (one core left to the main process). On the CPU the workers compete with the training threads for the
    same cores: measured on 2 cores, 1 or 2 workers trained at 0.95-0.96x the images/s of loading in the main
    process (BENCHMARKS.md, train-workers), so 0 up to 4 cores; with more, a quarter of them (up to 8; not measured
    here)."""
    cpus = os.cpu_count() or 1
    if device.type == "cuda":
        return max(1, min(8, cpus - 1))
    return 0 if cpus <= 4 else min(8, cpus // 4)


def train_loader(train_set, cfg: TrainConfig, epoch: int, world: int, rank: int):
    """This epoch's batches. Single process: yolokit.data's multi-scale batch sampler; DDP: a
    DistributedSampler (one fixed size). Both are seeded from ``seed + epoch``, and the dataset's augmentation
    RNG is re-seeded from torch's seed (set per epoch by the caller) -- so a resumed run replays the same
    epochs as an uninterrupted one."""
    from yolokit.data import build_loader, collate

    if hasattr(train_set, "loader"):  # a TrainStream (shards): it splits and seeds each epoch itself
        return train_set.loader(epoch)
    train_set.reseed()
    if world == 1:
        return build_loader(train_set, cfg.batch, cfg.imgsz, train=True, workers=cfg.workers,
                            multiscale=cfg.multiscale, seed=cfg.seed, epoch=epoch)
    sampler = torch.utils.data.distributed.DistributedSampler(train_set, num_replicas=world, rank=rank,
                                                              shuffle=True, seed=cfg.seed)
    sampler.set_epoch(epoch)
    g = torch.Generator().manual_seed(cfg.seed + epoch)
    return torch.utils.data.DataLoader(train_set, batch_size=cfg.batch, sampler=sampler, num_workers=cfg.workers,
                                       collate_fn=collate, generator=g)
