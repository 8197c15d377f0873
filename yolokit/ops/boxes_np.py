"""The NumPy twin of :mod:`yolokit.ops.boxes`: the same names and the same box convention, on ``np.ndarray``.

A box is ``xyxy`` in absolute pixels of its image (see :mod:`yolokit.ops.boxes`); the evaluators, the trackers
and the HOG trainer work in NumPy and use these. One difference from the torch functions, on purpose: an IoU
whose union is zero (two empty boxes) is exactly 0 here -- no epsilon in the denominator -- as pycocotools and
the VOC devkit compute it, so the evaluators' numbers match theirs to the last bit.
"""

from __future__ import annotations

import numpy as np


# ----------------------------------------------------------------------------- conversions
def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """``[..., 4]`` (x1, y1, x2, y2) -> (x, y, w, h), the top-left corner plus size (COCO)."""
    boxes = np.asarray(boxes)
    return np.concatenate((boxes[..., :2], boxes[..., 2:4] - boxes[..., :2]), axis=-1)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """``[..., 4]`` (x, y, w, h) -> (x1, y1, x2, y2)."""
    boxes = np.asarray(boxes)
    return np.concatenate((boxes[..., :2], boxes[..., :2] + boxes[..., 2:4]), axis=-1)


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """``[..., 4]`` (x1, y1, x2, y2) -> (cx, cy, w, h), the centre plus size (YOLO)."""
    boxes = np.asarray(boxes)
    return np.concatenate(((boxes[..., :2] + boxes[..., 2:4]) / 2, boxes[..., 2:4] - boxes[..., :2]), axis=-1)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """``[..., 4]`` (cx, cy, w, h) -> (x1, y1, x2, y2)."""
    boxes = np.asarray(boxes)
    return np.concatenate((boxes[..., :2] - boxes[..., 2:4] / 2, boxes[..., :2] + boxes[..., 2:4] / 2), axis=-1)


def area(boxes: np.ndarray) -> np.ndarray:
    """``[..., 4]`` xyxy -> ``[...]`` area; inverted boxes count as 0."""
    return (np.clip(boxes[..., 2] - boxes[..., 0], 0, None)
            * np.clip(boxes[..., 3] - boxes[..., 1], 0, None))


# ----------------------------------------------------------------------------- IoU
def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of broadcast-compatible xyxy boxes ``[..., 4]``; 0 where the union is 0."""
    lt = np.maximum(a[..., :2], b[..., :2])
    rb = np.minimum(a[..., 2:4], b[..., 2:4])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    union = area(a) + area(b) - inter
    return np.divide(inter, union, out=np.zeros_like(inter, dtype=np.result_type(inter, np.float32)),
                     where=union > 0)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU: ``[N,4], [M,4] -> [N,M]`` (xyxy); either side may be empty."""
    a = np.asarray(a).reshape(-1, 4)
    b = np.asarray(b).reshape(-1, 4)
    return _iou(a[:, None, :], b[None, :, :])  # [N, M, 4] against [N, M, 4] by broadcasting


def elementwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of matching rows: ``[N,4], [N,4] -> [N]``."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"elementwise IoU needs equal shapes, got {a.shape} and {b.shape}")
    return _iou(a, b)


def shape_iou(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU of box *shapes* sharing one centre: ``[N, 2], [K, 2] -> [N, K]`` (YOLOv2 sec. 2, "Dimension Clusters":
    matching a box to an anchor looks at width and height only)."""
    wh, anchors = np.asarray(wh), np.asarray(anchors)
    inter = np.prod(np.minimum(wh[:, None, :], anchors[None, :, :]), axis=-1)  # [N, K]
    union = np.prod(wh, axis=-1)[:, None] + np.prod(anchors, axis=-1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter, dtype=np.result_type(inter, np.float32)),
                     where=union > 0)
