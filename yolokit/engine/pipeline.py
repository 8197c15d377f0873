"""Batches for the trainer: letterboxed network inputs and targets in network pixels.

:class:`LetterboxSet` wraps a :func:`yolokit.data.load_dataset` dataset. Each item is

* ``image`` float ``[3, S, S]`` RGB in [0, 1] (Darknet's letterbox: aspect kept, 0.5-grey padding);
* ``targets`` float ``[n, 5]`` = (class, x1, y1, x2, y2) in network pixels;
* ``meta`` = (dataset index, scale, (pad_x, pad_y)) to map detections back to the original image.

With ``augment=True`` the placement is jittered Darknet-style (random scale and aspect within ``jitter``, random
offset on the canvas -- this crops or pads), then a horizontal flip and an HSV colour change. Every transform
moves the boxes with the pixels, so the labels stay true; boxes that end up mostly outside the canvas are dropped.
:func:`collate` stacks items into ``images [B, 3, S, S]`` and ``targets [M, 6]`` (batch_index first), the
layout the losses take.
"""

from __future__ import annotations

import random

import numpy as np
import torch

PAD = 128  # Darknet's 0.5 grey as uint8, the letterbox fill of yolokit.data.transforms


class LetterboxSet(torch.utils.data.Dataset):
    """Network-ready items from a detection dataset; see the module docstring."""

    def __init__(self, dataset, imgsz: int, augment: bool = False, indices=None, jitter: float = 0.2,
                 hsv: tuple[float, float, float] = (0.015, 0.5, 0.4), flip: float = 0.5):
        self.dataset = dataset
        self.imgsz = int(imgsz)
        self.augment = augment
        self.indices = list(range(len(dataset))) if indices is None else list(indices)
        self.jitter, self.hsv, self.flip = jitter, hsv, flip

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        import cv2

        index = self.indices[i]
        sample = self.dataset[index]
        image, boxes, labels = sample.image, sample.boxes.astype(np.float32), sample.labels
        # Training targets leave out COCO crowd regions and VOC "difficult" objects, as Darknet's label
        # scripts do (voc_label.py skips difficult=1); evaluation ignores them rather than counting them.
        keep = ~(np.asarray(sample.difficult, bool) | np.asarray(sample.iscrowd, bool))
        boxes, labels = boxes[keep], labels[keep]
        h, w = image.shape[:2]
        s = self.imgsz
        scale = min(s / w, s / h)
        sx = sy = scale
        if self.augment and self.jitter > 0:
            # Darknet-style jitter: random size and aspect, then a random position on the canvas.
            sx = scale * random.uniform(1 - self.jitter, 1 + self.jitter)
            sy = scale * random.uniform(1 - self.jitter, 1 + self.jitter)
        new_w, new_h = max(1, round(w * sx)), max(1, round(h * sy))
        if self.augment and self.jitter > 0:
            px = random.randint(min(0, s - new_w), max(0, s - new_w))
            py = random.randint(min(0, s - new_h), max(0, s - new_h))
        else:
            px, py = (s - new_w) // 2, (s - new_h) // 2
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        canvas = np.full((s, s, 3), PAD, dtype=np.uint8)
        # paste the visible part of the resized image (offsets may be negative: crop)
        x0, y0 = max(px, 0), max(py, 0)
        x1, y1 = min(px + new_w, s), min(py + new_h, s)
        canvas[y0:y1, x0:x1] = resized[y0 - py:y1 - py, x0 - px:x1 - px]
        rx, ry = new_w / w, new_h / h
        b = boxes * np.array([rx, ry, rx, ry], np.float32) + np.array([px, py, px, py], np.float32)
        if self.augment:
            b, labels = _clip_and_filter(b, labels, s)
            if random.random() < self.flip:
                canvas = np.ascontiguousarray(canvas[:, ::-1])
                b = np.stack((s - b[:, 2], b[:, 1], s - b[:, 0], b[:, 3]), 1) if len(b) else b
            if any(self.hsv):
                canvas = _hsv_jitter(canvas, *self.hsv)
        img = torch.from_numpy(canvas).permute(2, 0, 1).float().div_(255)
        targets = torch.from_numpy(np.concatenate((labels.reshape(-1, 1).astype(np.float32),
                                                   b.reshape(-1, 4)), 1))
        # meta maps network pixels back to the original image (only exact without augmentation)
        return img, targets, (index, (rx, ry), (px, py))


def _clip_and_filter(boxes: np.ndarray, labels: np.ndarray, s: int, min_visible: float = 0.3,
                     min_side: float = 2.0):
    """Clip boxes to the canvas; drop those with less than ``min_visible`` of their area left or a side
    under ``min_side`` pixels (a box cut down to a sliver no longer describes its object)."""
    if len(boxes) == 0:
        return boxes, labels
    area0 = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    clipped = boxes.clip(0, s)
    wh = clipped[:, 2:] - clipped[:, :2]
    keep = (wh.min(1) >= min_side) & (wh.prod(1) >= min_visible * area0)
    return clipped[keep], labels[keep]


def _hsv_jitter(image: np.ndarray, hgain: float, sgain: float, vgain: float) -> np.ndarray:
    """Random hue shift and saturation / value gains (Darknet's hue, saturation, exposure)."""
    import cv2

    gains = np.random.uniform(-1, 1, 3) * (hgain, sgain, vgain) + 1
    hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_RGB2HSV))
    x = np.arange(256, dtype=np.float32)
    lut_h = ((x * gains[0]) % 180).astype(np.uint8)
    lut_s = np.clip(x * gains[1], 0, 255).astype(np.uint8)
    lut_v = np.clip(x * gains[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_h), cv2.LUT(sat, lut_s), cv2.LUT(val, lut_v)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def collate(batch):
    """``[(image, targets [n,5], meta)]`` -> ``images [B,3,S,S]``, ``targets [M,6]`` (batch_index, class,
    x1, y1, x2, y2), ``metas`` (list)."""
    images, targets, metas = zip(*batch)
    rows = [torch.cat((torch.full((len(t), 1), float(i)), t), 1) for i, t in enumerate(targets)]
    return torch.stack(images), torch.cat(rows) if rows else torch.zeros((0, 6)), list(metas)


def worker_init(worker_id: int) -> None:
    """Seed python/numpy in each DataLoader worker from torch's per-worker seed (augmentations use them)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
