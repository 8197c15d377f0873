"""From a dataset to network-ready batches: :class:`TrainDataset`, multi-scale batches, :func:`collate`.

Target encoding (YOLOv1 grid cells, YOLOv2/v3 anchor assignment) is NOT done here: it lives with the
losses (``yolokit/loss``), next to the head it serves. The data side hands over, per batch, plain boxes
and labels in network pixels -- see :func:`collate`.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from yolokit.data.augment import AugmentConfig, build_albumentations, mixup, mosaic, resize_long_side
from yolokit.ops.letterbox import PAD_VALUE, letterbox, letterbox_boxes


class TrainDataset:
    """Wrap a :class:`~yolokit.data.dataset.DetectionDataset` for training or evaluation.

    ``item = ds[i]`` or ``ds[(i, size)]`` (the multi-scale sampler passes the batch's size) returns
    ``(image uint8 [S, S, 3] RGB, boxes float32 [N, 4] xyxy network pixels, labels int64 [N], meta)``.
    ``meta`` holds ``index, image_id, path, orig_size (h, w), size`` and, without augmentation, the
    letterbox ``scale`` and ``pad`` so detections map back (``unletterbox_boxes``); with augmentation
    those two are None (the geometry is random).

    ``augment``: an :class:`AugmentConfig`, True (defaults) or False/None (letterbox only, for eval).
    Crowd boxes (COCO iscrowd) and VOC difficult boxes are left out of training targets by default, as
    Darknet's ``voc_label.py`` does; the counts are in ``self.dropped`` and :meth:`summary`.
    Augmentation randomness is reseeded in every worker process from ``torch.initial_seed()``, so
    workers never repeat each other and a fixed DataLoader generator reproduces a run.
    """

    def __init__(self, dataset, size: int = 416, augment: AugmentConfig | bool | None = True,
                 drop_crowd: bool = True, drop_difficult: bool = True, pad_value: float = PAD_VALUE):
        self.dataset = dataset
        self.size = int(size)
        self.augment = AugmentConfig() if augment is True else (augment or None)
        self.pad_value = pad_value
        self.drop_crowd, self.drop_difficult = drop_crowd, drop_difficult
        self.dropped = {"iscrowd": 0, "difficult": 0}
        for r in dataset.records:
            self.dropped["iscrowd"] += int(r.iscrowd.sum()) if drop_crowd else 0
            self.dropped["difficult"] += int((r.difficult & ~r.iscrowd).sum()) if drop_difficult else 0
        self._pid = None
        self._seed = None  # reseed(seed): this seed instead of torch.initial_seed()
        self._compose = None
        self._rng = None

    @property
    def class_names(self):
        return self.dataset.class_names

    def __len__(self) -> int:
        return len(self.dataset)

    def summary(self) -> str:
        return (f"{len(self)} images; left out of training targets: {self.dropped['iscrowd']} iscrowd, "
                f"{self.dropped['difficult']} difficult boxes; data problems: {self.dataset.problems.summary()}")

    # ------------------------------------------------------------------ randomness, per process
    def reseed(self, seed: int | None = None) -> None:
        """Re-seed the augmentation RNG from ``torch.initial_seed()`` on next use (the trainer calls this each
        epoch after seeding torch, so a resumed run replays the same augmentations), or from ``seed`` when
        given (a shard stream seeds each of its workers itself: :mod:`yolokit.data.stream`)."""
        self._pid = None
        self._seed = seed

    def _ensure_rng(self):
        if self._pid != os.getpid():
            seed = (torch.initial_seed() if self._seed is None else self._seed) % 2**32
            self._rng = np.random.default_rng(seed)
            if self.augment is not None:
                self._compose = build_albumentations(self.augment, self.pad_value)
                self._compose.set_random_seed(int(seed))
            self._pid = os.getpid()

    # ------------------------------------------------------------------ loading
    def _load(self, i: int):
        s = self.dataset[i]
        keep = np.ones(len(s.boxes), bool)
        if self.drop_crowd:
            keep &= ~s.iscrowd
        if self.drop_difficult:
            keep &= ~s.difficult
        return s, s.boxes[keep], s.labels[keep]

    def _augmented(self, i: int, size: int):
        cfg = self.augment
        if self._rng.random() < cfg.mosaic:
            idx = [i] + list(self._rng.integers(0, len(self), 3))
            parts = []
            for j in idx:
                s, b, l = self._load(int(j))
                img, b = resize_long_side(s.image, b, size)
                parts.append((img, b, l))
            image, boxes, labels = mosaic(parts, size, self._rng, self.pad_value)
        else:
            s, boxes, labels = self._load(i)
            image, boxes = resize_long_side(s.image, boxes, size)
        out = self._compose(image=image, bboxes=boxes, labels=labels)
        image = out["image"]
        boxes = np.asarray(out["bboxes"], np.float32).reshape(-1, 4)
        labels = np.asarray(out["labels"], np.int64).reshape(-1)
        image, scale, pad = letterbox(image, size, self.pad_value)
        return image, letterbox_boxes(boxes, scale, pad), labels

    def __getitem__(self, index):
        i, size = index if isinstance(index, tuple) else (index, self.size)
        i, size = int(i), int(size)
        self._ensure_rng()
        r = self.dataset.records[i]
        meta = {"index": i, "image_id": r.image_id, "path": str(r.path), "orig_size": tuple(r.size), "size": size,
                "scale": None, "pad": None}
        if self.augment is None:
            s, boxes, labels = self._load(i)
            image, scale, pad = letterbox(s.image, size, self.pad_value)
            meta.update(scale=scale, pad=pad)
            return image, letterbox_boxes(boxes, scale, pad), labels, meta
        image, boxes, labels = self._augmented(i, size)
        if self.augment.mixup > 0 and self._rng.random() < self.augment.mixup:
            j = int(self._rng.integers(0, len(self)))
            image, boxes, labels = mixup((image, boxes, labels), self._augmented(j, size), self._rng)
        return image, boxes, labels, meta


def collate(batch):
    """Stack a list of ``TrainDataset`` items into ``(images, targets, metas)``.

    * ``images``  -- float32 ``[B, 3, H, W]`` RGB in [0, 1] (all items of a batch share one size);
    * ``targets`` -- float32 ``[M, 6]``, one row per box of the whole batch:
      ``[batch_index, class, x1, y1, x2, y2]`` with xyxy in network-input pixels (M may be 0);
    * ``metas``   -- list of B dicts (``index, image_id, path, orig_size, size, scale, pad``).

    Variable box counts are handled by the ``batch_index`` column; grid/anchor target encoding is the
    loss's job (``yolokit/loss``).
    """
    images = torch.from_numpy(np.stack([b[0] for b in batch]))  # [B, H, W, 3] uint8
    images = images.permute(0, 3, 1, 2).float().div_(255)
    rows = []
    for k, (_, boxes, labels, _) in enumerate(batch):
        n = len(labels)
        if n:
            rows.append(np.concatenate([np.full((n, 1), k, np.float32), labels.reshape(n, 1).astype(np.float32),
                                        np.asarray(boxes, np.float32).reshape(n, 4)], axis=1))
    targets = torch.from_numpy(np.concatenate(rows)) if rows else torch.zeros((0, 6), dtype=torch.float32)
    return images, targets, [b[3] for b in batch]


class MultiScaleBatchSampler:
    """Batches of ``(index, size)`` pairs: one network size per batch, drawn from ``sizes`` (YOLOv2 sec. 2,
    "multi-scale training": multiples of 32 from 320 to 608), changed every ``every`` batches.

    Reproducible: the order and the sizes depend only on ``seed`` and the epoch (:meth:`set_epoch`; each
    new iteration advances the epoch by one).
    """

    def __init__(self, n: int, batch_size: int, sizes=(320, 352, 384, 416, 448, 480, 512, 544, 576, 608),
                 shuffle: bool = True, drop_last: bool = False, seed: int = 0, every: int = 1):
        self.n, self.batch_size, self.sizes = n, batch_size, list(sizes)
        self.shuffle, self.drop_last, self.seed, self.every = shuffle, drop_last, seed, max(1, every)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1000003 + self.epoch)
        self.epoch += 1
        order = torch.randperm(self.n, generator=g).tolist() if self.shuffle else list(range(self.n))
        size = self.sizes[0]
        for b in range(len(self)):
            if b % self.every == 0:
                size = self.sizes[int(torch.randint(len(self.sizes), (1,), generator=g))]
            chunk = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield [(i, size) for i in chunk]


def build_loader(dataset, batch_size: int = 16, size: int = 416, train: bool = True, workers: int = 2,
                 augment: AugmentConfig | bool | None = None, multiscale=None, seed: int = 0,
                 shuffle: bool | None = None, drop_last: bool = False, epoch: int = 0):
    """A ``torch.utils.data.DataLoader`` of :func:`collate` batches over ``dataset``.

    ``dataset``: a DetectionDataset (or a ready TrainDataset). ``train``: augment (``augment`` overrides)
    and shuffle. ``multiscale``: None (fixed ``size``) or a ``(min, max)`` range stepped by 32. ``epoch``:
    the order, the sizes and the worker processes' augmentation seeds are drawn from ``(seed, epoch)``, so
    each epoch differs and a resumed run replays it (with ``workers=0`` augmentation follows torch's seed).
    """
    from torch.utils.data import DataLoader

    if not isinstance(dataset, TrainDataset):
        dataset = TrainDataset(dataset, size, augment=(train if augment is None else augment))
    shuffle = train if shuffle is None else shuffle
    sizes = [size] if multiscale is None else list(range(int(multiscale[0]), int(multiscale[1]) + 1, 32))
    sampler = MultiScaleBatchSampler(len(dataset), batch_size, sizes, shuffle=shuffle, drop_last=drop_last, seed=seed)
    sampler.set_epoch(epoch)
    g = torch.Generator().manual_seed(seed + epoch)  # the workers' seeds: another draw each epoch
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate, generator=g,
                      pin_memory=torch.cuda.is_available(), persistent_workers=False)
