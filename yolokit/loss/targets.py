"""Target encoding: ground-truth boxes -> what each prediction slot should output.

Targets enter as one tensor ``[M, 6]`` = (batch_index, class, x1, y1, x2, y2) in network-input pixels
(the collate contract of :mod:`yolokit.data`). Two encodings live here:

* :func:`encode_grid` -- the YOLOv1 grid (Redmon et al. 2016, sec. 2): an object belongs to the cell
  holding its centre; the cell's label is ``(x, y, w, h, P)`` for each of its B predictors followed by
  C class scores, i.e. ``S x S x (B*5 + C)``.
* :func:`assign_anchors` -- YOLOv2/v3 (sec. 2.1 of each paper): a truth is given to the anchor whose
  *shape* (w, h, both centred at the origin) overlaps it best, in the cell holding its centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from yolokit.ops.boxes import shape_iou, xyxy_to_cxcywh


def _keep_last_per_slot(slot: Tensor) -> Tensor:
    """Boolean mask over ``slot [K]`` (int64) that keeps, for each distinct value, its LAST occurrence.

    Two truths that land in the same prediction slot cannot both be learned; Darknet overwrites the
    slot with the later truth. Doing it with a scatter-max of the row order keeps it deterministic
    (an in-place ``tensor[idx] = value`` with duplicate ``idx`` is not).
    """
    if slot.numel() == 0:
        return torch.zeros(0, dtype=torch.bool, device=slot.device)
    order = torch.arange(slot.numel(), device=slot.device)
    _, inverse = torch.unique(slot, return_inverse=True)
    winner = torch.full((int(inverse.max()) + 1,), -1, dtype=torch.long, device=slot.device)
    winner = winner.scatter_reduce(0, inverse, order, reduce="amax")
    return winner[inverse] == order


# ----------------------------------------------------------------------------- YOLOv1 grid
def encode_grid(targets: Tensor, batch_size: int, grid: int, num_boxes: int, num_classes: int,
                img_size: tuple[int, int]) -> Tensor:
    """Encode truths on the YOLOv1 ``S x S`` grid.

    Args:
        targets: ``[M, 6]`` (batch_index, class, x1, y1, x2, y2), network pixels.
        batch_size, grid (S), num_boxes (B), num_classes (C): output shape.
        img_size: network input ``(height, width)`` in pixels.

    Returns:
        ``[batch_size, S, S, B*5 + C]``. Per cell: B copies of ``(x, y, w, h, P)`` then C one-hot class
        scores, where (x, y) is the centre relative to the cell (in [0, 1)), (w, h) the size relative to
        the image (the *square roots* are what the v1 loss compares) and P = 1 where an object's centre
        falls in the cell, 0 elsewhere. A cell holds one object: when several centres fall in one cell
        the last one in ``targets`` wins (as in Darknet); the rest are dropped.
    """
    height, width = img_size
    out = targets.new_zeros((batch_size, grid, grid, num_boxes * 5 + num_classes))
    if targets.numel() == 0:
        return out
    b = targets[:, 0].long()
    cls = targets[:, 1].long()
    cxcywh = xyxy_to_cxcywh(targets[:, 2:6])
    gx = cxcywh[:, 0] / width * grid  # centre in grid units
    gy = cxcywh[:, 1] / height * grid
    gi = gx.floor().long().clamp(0, grid - 1)
    gj = gy.floor().long().clamp(0, grid - 1)
    keep = _keep_last_per_slot((b * grid + gj) * grid + gi)
    b, cls, gi, gj = b[keep], cls[keep], gi[keep], gj[keep]
    box = torch.stack((gx[keep] - gi, gy[keep] - gj,
                       (cxcywh[keep, 2] / width).sqrt(), (cxcywh[keep, 3] / height).sqrt(),
                       torch.ones_like(gx[keep])), dim=-1)  # [K, 5]
    out[b, gj, gi, : num_boxes * 5] = box.repeat(1, num_boxes)
    out[b, gj, gi, num_boxes * 5 + cls] = 1.0
    return out


# ----------------------------------------------------------------------------- YOLOv2/v3 anchors
@dataclass
class Assignment:
    """Truths matched to anchor slots of one detection head (all tensors ``[K]`` unless noted).

    ``b, a, gj, gi`` index the head's output ``[B, A, H, W, 5+C]``; ``box`` is ``[K, 4]`` xyxy network
    pixels; ``cls`` the class; ``truth`` the row of the truth in the ``targets`` tensor.
    """

    b: Tensor
    a: Tensor
    gj: Tensor
    gi: Tensor
    box: Tensor
    cls: Tensor
    truth: Tensor


def assign_anchors(targets: Tensor, anchors: list[Tensor], strides: list[float],
                   grid_sizes: list[tuple[int, int]], groups: list[int],
                   iou_thresh: float = 1.0) -> list[Assignment]:
    """Match truths to anchors by shape IoU.

    Heads in the same ``group`` compete for a truth (YOLOv3's three scales share one list of 9 anchors:
    the best of the 9 decides which scale, which anchor). A truth goes to its best anchor in each group,
    and additionally to every other anchor of that group whose shape IoU exceeds ``iou_thresh``
    (AlexeyAB's ``iou_thresh``; 1.0, the default, keeps the papers' single best anchor).

    Args:
        targets: ``[M, 6]`` (batch_index, class, x1, y1, x2, y2), network pixels.
        anchors: per head ``[A_h, 2]`` (w, h) network pixels.
        strides: per head, network pixels per output cell.
        grid_sizes: per head ``(H, W)`` of the output.
        groups: per head, the id of the group it competes in.

    Returns:
        one :class:`Assignment` per head. When two truths land in the same slot, the later one wins.
    """
    device = targets.device
    empty = torch.zeros(0, dtype=torch.long, device=device)
    result = [Assignment(empty, empty, empty, empty, targets.new_zeros((0, 4)), empty, empty)
              for _ in anchors]
    if targets.numel() == 0:
        return result
    cxcywh = xyxy_to_cxcywh(targets[:, 2:6])
    for group in sorted(set(groups)):
        members = [h for h, g in enumerate(groups) if g == group]
        pooled = torch.cat([anchors[h].to(targets) for h in members])  # [A_total, 2]
        owner = torch.cat([torch.full((len(anchors[h]),), h, device=device) for h in members])
        local = torch.cat([torch.arange(len(anchors[h]), device=device) for h in members])
        ious = shape_iou(cxcywh[:, 2:4], pooled)  # [M, A_total]
        best = ious.argmax(dim=1)
        match = ious > iou_thresh
        match[torch.arange(len(targets), device=device), best] = True
        t_idx, k_idx = match.nonzero(as_tuple=True)
        for h in members:
            on_head = owner[k_idx] == h
            t, a = t_idx[on_head], local[k_idx[on_head]]
            gh, gw = grid_sizes[h]
            gi = (cxcywh[t, 0] / strides[h]).floor().long().clamp(0, gw - 1)
            gj = (cxcywh[t, 1] / strides[h]).floor().long().clamp(0, gh - 1)
            b = targets[t, 0].long()
            keep = _keep_last_per_slot(((b * len(anchors[h]) + a) * gh + gj) * gw + gi)
            result[h] = Assignment(b[keep], a[keep], gj[keep], gi[keep], targets[t[keep], 2:6],
                                   targets[t[keep], 1].long(), t[keep])
    return result
