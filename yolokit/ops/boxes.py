"""Box operations. The one box convention of yolokit is stated here:

    A box is ``xyxy`` -- (x1, y1, x2, y2) -- in absolute pixels of the image it belongs to,
    stored as a float ``Tensor[N, 4]``; x2 > x1 and y2 > y1 for a valid box.

Other forms exist only at the edges (COCO's ``xywh``, YOLO txt's normalised ``cxcywh``,
Darknet's network-relative ``cxcywh``) and are converted with the functions below.
All functions are vectorised, differentiable and device-agnostic; none loops over boxes.
:mod:`yolokit.ops.boxes_np` is the NumPy twin (same names) for the code that works in NumPy.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_EPS = 1e-7


# ----------------------------------------------------------------------------- conversions
def xyxy_to_xywh(boxes: Tensor) -> Tensor:
    """``[..., 4]`` (x1, y1, x2, y2) -> (x, y, w, h), the top-left corner plus size (COCO)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack((x1, y1, x2 - x1, y2 - y1), dim=-1)


def xywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``[..., 4]`` (x, y, w, h) -> (x1, y1, x2, y2)."""
    x, y, w, h = boxes.unbind(-1)
    return torch.stack((x, y, x + w, y + h), dim=-1)


def xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """``[..., 4]`` (x1, y1, x2, y2) -> (cx, cy, w, h), the centre plus size (YOLO)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``[..., 4]`` (cx, cy, w, h) -> (x1, y1, x2, y2)."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def normalize(boxes: Tensor, width: float, height: float) -> Tensor:
    """Divide x coordinates by ``width`` and y by ``height`` (any 4-vector form whose
    entries alternate x, y, x, y -- xyxy, xywh and cxcywh all do)."""
    scale = boxes.new_tensor((width, height, width, height))
    return boxes / scale


def denormalize(boxes: Tensor, width: float, height: float) -> Tensor:
    """Inverse of :func:`normalize`."""
    scale = boxes.new_tensor((width, height, width, height))
    return boxes * scale


def clip(boxes: Tensor, width: float, height: float) -> Tensor:
    """Clip xyxy boxes ``[N, 4]`` to the image ``[0, width] x [0, height]``."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack((x1.clamp(0, width), y1.clamp(0, height),
                        x2.clamp(0, width), y2.clamp(0, height)), dim=-1)


def area(boxes: Tensor) -> Tensor:
    """``[..., 4]`` xyxy -> ``[...]`` area; inverted boxes count as 0."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


# ----------------------------------------------------------------------------- IoU family
def _pairs(a: Tensor, b: Tensor, pairwise: bool) -> tuple[Tensor, Tensor]:
    """Broadcast ``a [N,4]`` and ``b [M,4]`` to ``[N,M,4]`` (pairwise) or check ``[N,4] == [N,4]``."""
    if pairwise:
        return a[:, None, :], b[None, :, :]
    if a.shape != b.shape:
        raise ValueError(f"elementwise IoU needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    return a, b


def _iou_parts(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Intersection-over-union and union for broadcast-compatible xyxy boxes."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area(a) + area(b) - inter
    return inter / (union + _EPS), union


def _enclosing(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Top-left and bottom-right corners of the smallest box enclosing both."""
    return torch.minimum(a[..., :2], b[..., :2]), torch.maximum(a[..., 2:], b[..., 2:])


def _centre_distance(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Squared centre distance and squared diagonal of the enclosing box (DIoU, Zheng et al. 2020)."""
    lt, rb = _enclosing(a, b)
    diag2 = ((rb - lt) ** 2).sum(-1) + _EPS
    ca = (a[..., :2] + a[..., 2:]) / 2
    cb = (b[..., :2] + b[..., 2:]) / 2
    return ((ca - cb) ** 2).sum(-1), diag2


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise IoU: ``[N,4], [M,4] -> [N,M]`` (xyxy)."""
    return _iou_parts(*_pairs(a, b, True))[0]


def box_giou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise generalised IoU (Rezatofighi et al. 2019): ``[N,4], [M,4] -> [N,M]``, in [-1, 1]."""
    return _giou(*_pairs(a, b, True))


def box_diou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise distance IoU: ``[N,4], [M,4] -> [N,M]``."""
    return _diou(*_pairs(a, b, True))


def box_ciou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise complete IoU: ``[N,4], [M,4] -> [N,M]``."""
    return _ciou(*_pairs(a, b, True))


def shape_iou(wh: Tensor, anchors: Tensor) -> Tensor:
    """IoU of box *shapes* centred at the origin: ``[M, 2], [A, 2] -> [M, A]`` (YOLOv2 sec. 2, "Dimension
    Clusters": position does not matter when matching a truth to an anchor, only width and height)."""
    half_t = wh / 2
    half_a = anchors / 2
    return box_iou(torch.cat((-half_t, half_t), dim=1), torch.cat((-half_a, half_a), dim=1))


def elementwise_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of matching rows: ``[N,4], [N,4] -> [N]``."""
    return _iou_parts(*_pairs(a, b, False))[0]


def elementwise_giou(a: Tensor, b: Tensor) -> Tensor:
    """GIoU of matching rows: ``[N,4], [N,4] -> [N]``."""
    return _giou(*_pairs(a, b, False))


def elementwise_diou(a: Tensor, b: Tensor) -> Tensor:
    """DIoU of matching rows: ``[N,4], [N,4] -> [N]``."""
    return _diou(*_pairs(a, b, False))


def elementwise_ciou(a: Tensor, b: Tensor) -> Tensor:
    """CIoU of matching rows: ``[N,4], [N,4] -> [N]``."""
    return _ciou(*_pairs(a, b, False))


def _giou(a: Tensor, b: Tensor) -> Tensor:
    iou, union = _iou_parts(a, b)
    lt, rb = _enclosing(a, b)
    hull = ((rb - lt).clamp(min=0)).prod(-1) + _EPS
    return iou - (hull - union) / hull


def _diou(a: Tensor, b: Tensor) -> Tensor:
    iou, _ = _iou_parts(a, b)
    dist2, diag2 = _centre_distance(a, b)
    return iou - dist2 / diag2


def _ciou(a: Tensor, b: Tensor) -> Tensor:
    iou, _ = _iou_parts(a, b)
    dist2, diag2 = _centre_distance(a, b)
    wa, ha = a[..., 2] - a[..., 0], a[..., 3] - a[..., 1]
    wb, hb = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    # Aspect-ratio consistency term v and its trade-off alpha (CIoU, Zheng et al. 2020, eq. 9-11);
    # alpha is treated as a constant w.r.t. the gradient, as in the paper.
    v = (4 / math.pi**2) * (torch.atan(wb / (hb + _EPS)) - torch.atan(wa / (ha + _EPS))) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + _EPS)
    return iou - dist2 / diag2 - alpha * v
