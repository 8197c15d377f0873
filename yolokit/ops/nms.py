"""Non-maximum suppression kernels: exact greedy NMS within groups, on ``torchvision.ops.nms``.

How it is organised (measured, see BENCHMARKS.md "nms"): greedy NMS costs a fixed ~30-45 us per
``torchvision.ops.nms`` call plus O(n x kept) inside it, so one call over everything (per-class coordinate offsets)
is slow and one call per (image, class) group pays the fixed part ~170 times on a dense batch. :func:`grouped_nms`
therefore runs greedy NMS's first steps for all groups at once with tensor operations (the best box of each group is
kept and removes what it overlaps, with the kernel's own arithmetic) and hands the few groups left to the kernel.
Keeps are identical to per-class ``torchvision.ops.nms`` (tests/ops/test_nms.py, equal scores and equal boxes
included). The YOLO post-processor that feeds it is :mod:`yolokit.models.postprocess`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torchvision
from torch import Tensor


# NumPy finds the indices of a CPU boolean mask ~4x faster than torch 2.14 on one thread (0.19 vs 0.82 ms for 200k;
# 1 ms of the bench's 17 ms post-processing).

def flatnonzero(mask: Tensor) -> Tensor:
    """``mask.nonzero().squeeze(1)`` for a 1-D boolean mask: int64 indices of its True entries."""
    if mask.device.type == "cpu":
        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return mask.nonzero().squeeze(1)


# A greedy step over all groups at once costs about as much as this many torchvision NMS calls (~30-45 us each on
# the CPU; measured on the bench workload, BENCHMARKS.md "nms").
_CALLS_PER_STEP = 8
# Above this many groups with two or more boxes, greedy steps go on even when they remove few boxes: spread-out
# candidates (conf 0.001) close a few groups per step, and each closed group saves a kernel call.
_MANY_GROUPS = 64


def grouped_nms(boxes: Tensor, scores: Tensor, groups: Tensor, iou_thres: float) -> Tensor:
    """Exact greedy NMS applied independently within each group.

    Args:
        boxes: ``[K, 4]`` xyxy. scores: ``[K]``. groups: ``[K]`` int64 group id (e.g. image * C + class).
    Returns:
        int64 indices into ``boxes`` of the kept candidates, in no particular order: the keeps of
        ``torchvision.ops.nms`` run on each group alone.

    Greedy NMS's first steps are the same in every group: the best box is kept and removes the boxes it overlaps.
    While more than ``_CALLS_PER_STEP`` groups hold two or more boxes, and either more than ``_MANY_GROUPS`` do or
    the last step halved the boxes, those steps run for all groups at once (``_greedy_step``): a dense batch's
    clustered 25k candidates in 174 groups come down to 85 boxes in 13 groups in four steps; yolov3-tiny's 1.2k
    spread-out candidates at conf 0.001 in 57 groups stop after one.
    torchvision's kernel finishes each group that still has two or more boxes, one call per group.
    """
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    ids, kept = torch.arange(len(scores), device=boxes.device), []
    low, high = (int(v) for v in torch.aminmax(groups))
    stepwise = low >= 0 and high < 2 ** 24 and not torch.isnan(scores.sum())
    while stepwise and (calls := int((torch.bincount(groups, minlength=high + 1) > 1).sum())) > _CALLS_PER_STEP:
        best, rest = _greedy_step(boxes, scores, groups, high + 1, iou_thres)
        kept.append(ids.index_select(0, best))
        # Go on while many groups are open (each step closes some) or while steps halve the boxes (clusters).
        stepwise = calls > _MANY_GROUPS or 2 * len(rest) < len(ids)
        ids, boxes, scores, groups = (t.index_select(0, rest) for t in (ids, boxes, scores, groups))
    kept.append(ids.index_select(0, _nms_per_group(boxes, scores, groups, iou_thres)))
    return torch.cat(kept)


def _nms_per_group(boxes: Tensor, scores: Tensor, groups: Tensor, iou_thres: float) -> Tensor:
    """One ``torchvision.ops.nms`` call per group of two or more boxes (a lone box is kept as it is)."""
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(groups, stable=True)                      # groups become contiguous slices
    sizes = torch.unique_consecutive(groups.index_select(0, order), return_counts=True)[1].tolist()
    boxes, scores = boxes.index_select(0, order), scores.index_select(0, order)
    keeps, start = [], 0
    for n in sizes:
        if n == 1:
            keeps.append(torch.tensor([start], device=boxes.device))
        else:
            keeps.append(torchvision.ops.nms(boxes[start:start + n], scores[start:start + n], iou_thres) + start)
        start += n
    return order.index_select(0, torch.cat(keeps))


def _greedy_step(boxes: Tensor, scores: Tensor, groups: Tensor, size: int, iou_thres: float) -> tuple[Tensor, Tensor]:
    """One step of greedy NMS in every group at once.

    Each group's best box (the first of equal scores, as the kernel's sort leaves them) is kept; it suppresses
    the boxes whose IoU with it is > ``iou_thres``, computed with the kernel's arithmetic, so the boxes left
    are exactly those the kernel would still consider. ``groups`` are in ``[0, size)``. Returns ``(kept, left)``
    indices.
    """
    n = len(scores)
    index = torch.arange(n, device=boxes.device)
    top_score = scores.new_full((size,), -math.inf).scatter_reduce_(0, groups, scores, "amax")
    candidate = torch.where(scores == top_score.index_select(0, groups), index, n)
    first = index.new_full((size,), n).scatter_reduce_(0, groups, candidate, "amin")
    top = first.index_select(0, groups)                             # each box's group's best box
    is_first = index == top
    iou = _kernel_iou(boxes.index_select(0, top), boxes)
    # compared as the kernels do: the CPU kernel in float64 (C++ promotes the float IoU), the CUDA one in float32
    suppressed = (iou > iou_thres) if iou.is_cuda else (iou.double() > iou_thres)
    return flatnonzero(is_first), flatnonzero(~(is_first | suppressed))


def _kernel_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of matching rows, with the operations of torchvision's NMS kernel in the same order (areas not
    clamped, no epsilon), so a threshold decides as the kernel does. ``yolokit.ops.boxes.elementwise_iou`` is
    the general-purpose one."""
    w = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp_(min=0)
    h = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp_(min=0)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a + area_b - inter)


def nms_xyxy(boxes: Tensor, scores: Tensor, classes: Tensor, iou_thres: float = 0.45,
             agnostic: bool = False) -> Tensor:
    """Per-class (or class-agnostic) NMS for already-decoded detections of ONE image.

    Args:
        boxes: ``[K, 4]`` xyxy pixels. scores: ``[K]``. classes: ``[K]`` integer class ids.
    Returns:
        int64 indices of the kept detections, sorted by descending score.
    """
    groups = torch.zeros_like(classes, dtype=torch.long) if agnostic else classes.long()
    keep = grouped_nms(boxes, scores, groups, iou_thres)
    return keep[torch.argsort(scores[keep], descending=True, stable=True)]


def diou_nms(boxes: Tensor, scores: Tensor, groups: Tensor, iou_thres: float, beta: float = 0.6) -> Tensor:
    """Greedy DIoU-NMS within groups, as Darknet's ``nms_kind=diounms`` (box.c ``diounms_sort``): a box is
    suppressed by a higher-scoring box of its group when ``IoU - (d^2 / c^2) ** beta > iou_thres``, ``d`` the
    distance of the centres and ``c`` the diagonal of the smallest box enclosing both (``beta`` = the cfg's
    ``beta_nms``; Zheng et al. 2020, DIoU-NMS).

    Args:
        boxes: ``[K, 4]`` xyxy. scores: ``[K]``. groups: ``[K]`` int64 (image * classes + class, or image).
    Returns:
        int64 indices of the kept boxes, by descending score (ties keep their input order).
    """
    order = torch.argsort(scores, descending=True, stable=True)
    b, g = boxes[order].double(), groups[order]                       # double: the cut is a difference of terms
    alive = torch.ones(len(order), dtype=torch.bool, device=boxes.device)
    keep = []
    for i in range(len(order)):                                       # O(K x kept), vectorised over the rest
        if not alive[i]:
            continue
        keep.append(i)
        rest = alive.clone()
        rest[: i + 1] = False
        rest &= g == g[i]
        idx = flatnonzero(rest)
        if not len(idx):
            continue
        a, o = b[i:i + 1], b.index_select(0, idx)                      # [1, 4], [R, 4]
        lt, rb = torch.maximum(a[:, :2], o[:, :2]), torch.minimum(a[:, 2:], o[:, 2:])
        inter = (rb - lt).clamp(min=0).prod(1)
        union = (a[:, 2:] - a[:, :2]).prod(1) + (o[:, 2:] - o[:, :2]).prod(1) - inter
        iou = inter / union
        c2 = ((torch.maximum(a[:, 2:], o[:, 2:]) - torch.minimum(a[:, :2], o[:, :2])) ** 2).sum(1)
        d2 = (((a[:, :2] + a[:, 2:]) - (o[:, :2] + o[:, 2:])) ** 2).sum(1) / 4
        penalty = torch.where(c2 > 0, (d2 / c2.clamp(min=1e-12)) ** beta, torch.zeros_like(c2))
        alive[idx[(iou - penalty) > iou_thres]] = False
    return order[torch.as_tensor(keep, dtype=torch.long, device=boxes.device)]
