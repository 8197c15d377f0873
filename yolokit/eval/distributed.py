"""Distributed evaluation under ``torchrun``: each rank predicts its shard of the dataset (images
``rank, rank + world, ...``), the detections are gathered once (``all_gather_object``), and the metrics
are computed from the full, dataset-ordered list -- the same list, hence the same numbers, as one process.

    torchrun --nproc_per_node=2 -m yolokit eval --data coco128.yaml --model yolov3-tiny.cfg --weights ...

The process group is joined by :func:`yolokit.engine.distributed.init_from_env`, the one set-up training
uses too (the command line calls it); without a process group (or with one process) everything runs locally.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group, ``(0, 1)`` without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Shard:
    """Every ``world``-th item of a dataset starting at ``rank`` (``len`` and ``[i]`` only)."""

    def __init__(self, dataset, rank: int, world_size: int):
        self.dataset = dataset
        self.indices = list(range(rank, len(dataset), world_size))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[self.indices[i]]


def predict_dataset_distributed(predict_fn: Callable[[list], list], dataset, batch_size: int = 8,
                                progress: bool = False, all_ranks: bool = True) -> list | None:
    """:func:`yolokit.eval.predict_dataset` over this rank's shard, then one gather: all images'
    ``(K, 6)`` detection arrays in dataset order, on every rank (``all_ranks``) or on rank 0 only
    (the others return None)."""
    from yolokit.eval.evaluator import predict_dataset

    rank, size = world()
    if size == 1:
        return predict_dataset(predict_fn, dataset, batch_size, progress)
    import torch.distributed as dist

    shard = Shard(dataset, rank, size)
    mine = predict_dataset(predict_fn, shard, batch_size, progress and rank == 0)
    parts: list = [None] * size
    payload = (shard.indices, [np.asarray(d) for d in mine])
    if all_ranks:
        dist.all_gather_object(parts, payload)
    else:
        dist.gather_object(payload, parts if rank == 0 else None, dst=0)
        if rank != 0:
            return None
    out: list = [None] * len(dataset)
    for indices, dets in parts:
        for i, d in zip(indices, dets):
            out[i] = d
    return out


def evaluate_model_distributed(predict_fn: Callable[[list], list], dataset, batch_size: int = 8,
                               **evaluate_kwargs) -> dict:
    """Predict in shards, gather once, then :func:`yolokit.eval.evaluate` on every rank (each gets the
    same dict; only rank 0 should write files: ``save_dir`` is dropped on the others)."""
    from yolokit.eval.evaluator import evaluate

    dets = predict_dataset_distributed(predict_fn, dataset, batch_size)
    if world()[0] != 0:
        evaluate_kwargs = {**evaluate_kwargs, "save_dir": None, "analysis": False, "worst": 0}
    return evaluate(dataset, dets, **evaluate_kwargs)
