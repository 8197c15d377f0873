"""The one post-processor every yolokit detector goes through: confidence filter + per-class NMS.

Layout in: ``pred`` is ``(B, N, 5+C)`` = ``[cx, cy, w, h]`` in network-input pixels, objectness, then ``C`` class
probabilities (YOLOv3's decoded layout). A candidate's score is objectness x class probability (YOLOv2 sec. 2;
the lectures' "class confidence = P(class) x IoU").

Layout out: a list of ``B`` tensors ``(K, 6)`` = ``[x1, y1, x2, y2, score, class]``, sorted by descending score;
``(0, 6)`` when nothing survives.

How it is organised (measured, see BENCHMARKS.md "nms"): only rows whose objectness passes ``conf_thres`` are read
when that is selective (objectness bounds the score). Greedy NMS costs a fixed ~30-45 us per ``torchvision.ops.nms``
call plus O(n x kept) inside it, so one call over everything (per-class coordinate offsets) is slow and one call per
(image, class) group pays the fixed part ~170 times on a dense batch. ``grouped_nms`` therefore runs greedy NMS's
first steps for all groups at once with tensor operations (the best box of each group is kept and removes what it
overlaps, with the kernel's own arithmetic) and hands the few groups left to the kernel. Keeps are identical to
per-class ``torchvision.ops.nms`` (tests/test_postprocess.py, equal scores and equal boxes included).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torchvision
from torch import Tensor

from yolokit.ops.boxes import cxcywh_to_xyxy


def _check_args(pred: Tensor, conf_thres: float, iou_thres: float, max_det: int) -> None:
    if not isinstance(pred, Tensor):
        raise TypeError(f"pred must be a torch.Tensor (B, N, 5+C), got {type(pred).__name__}")
    if pred.dim() != 3 or pred.shape[-1] < 6:
        raise ValueError(f"pred must have shape (B, N, 5+C) with C >= 1, got {tuple(pred.shape)}")
    if pred.shape[0] == 0:
        raise ValueError("pred is an empty batch (B=0): pass at least one image")
    if not pred.is_floating_point():
        raise TypeError(f"pred must be a floating-point tensor, got {pred.dtype}")
    if not 0.0 <= conf_thres < 1.0:
        raise ValueError(f"conf_thres must be in [0, 1), got {conf_thres}")
    if not 0.0 <= iou_thres <= 1.0:
        raise ValueError(f"iou_thres must be in [0, 1], got {iou_thres}")
    if max_det < 1:
        raise ValueError(f"max_det must be >= 1, got {max_det}")


def _check_finite(class_scores: Tensor) -> None:
    if torch.isnan(class_scores).any():
        raise ValueError("pred contains NaN class probabilities among the candidates")


# NumPy finds the indices of a CPU boolean mask ~4x faster than torch 2.14 on one thread (0.19 vs 0.82 ms for 200k;
# 1 ms of the bench's 17 ms post-processing).

def _nonzero(mask: Tensor) -> Tensor:
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
    return _nonzero(is_first), _nonzero(~(is_first | suppressed))


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


def postprocess(pred: Tensor, conf_thres: float = 0.25, iou_thres: float = 0.45, max_det: int = 300,
                multi_label: bool = False, agnostic: bool = False,
                classes: list[int] | None = None) -> list[Tensor]:
    """Confidence filter + NMS for a batch of decoded YOLO predictions.

    Args:
        pred: ``(B, N, 5+C)`` float; ``[cx, cy, w, h]`` network pixels, objectness, C class probabilities in [0, 1].
        conf_thres: keep candidates whose score (objectness x class probability) is > this.
        iou_thres: suppress a box whose IoU with a higher-scoring box of the same group is > this.
        max_det: at most this many detections per image (the highest scores).
        multi_label: a box may be kept once per class whose score passes ``conf_thres``; otherwise only its best class.
        agnostic: NMS across classes instead of per class.
        classes: keep only these class indices.
    Returns:
        list of B tensors ``(K, 6)`` = ``[x1, y1, x2, y2, score, class]`` sorted by descending score.
    """
    _check_args(pred, conf_thres, iou_thres, max_det)
    obj = pred[..., 4].contiguous()
    if torch.isnan(obj.sum()) and torch.isnan(obj).any():      # the sum is NaN when any term is: one cheap test
        raise ValueError("pred contains NaN objectness scores")
    wanted = None if classes is None else torch.as_tensor(classes, device=pred.device)
    if not multi_label:
        # Objectness bounds the score (class probabilities are <= 1), so when it is selective (conf 0.25) only the
        # rows that pass it are read and all their candidates go to one NMS; at conf 0.001 nearly every row
        # passes and the top-k rounds below look at fewer candidates.
        flat = _nonzero(obj.view(-1) > conf_thres)                             # [K] indices of image * N + box
        if 4 * len(flat) < obj.numel():
            return _selective_nms(pred, flat, conf_thres, iou_thres, max_det, agnostic, wanted)
    scores, cls = _candidate_scores(pred, obj, multi_label)                    # [B, M], M = N or N*C
    if wanted is not None:
        scores = torch.where(torch.isin(cls, wanted), scores, torch.zeros_like(scores))
    return _top_per_image_nms(pred, scores, cls, conf_thres, iou_thres, max_det, multi_label, agnostic)


def _selective_nms(pred, flat, conf_thres, iou_thres, max_det, agnostic, wanted):
    """NMS over every candidate, read from the rows whose objectness passes ``conf_thres``."""
    batch, n, width = pred.shape
    rows = pred.reshape(-1, width).index_select(0, flat)                       # [K, 5+C], a row gather
    # max_c(obj * p_c) = obj * max_c(p_c) for obj >= 0 (rounding is monotonic): no K x C product.
    best, cls = rows[:, 5:].max(dim=-1)
    _check_finite(best)
    score = rows[:, 4] * best
    passed = score > conf_thres
    if wanted is not None:
        passed &= torch.isin(cls, wanted)
    passed = _nonzero(passed)
    img, score, cls = (t.index_select(0, passed) for t in (flat // n, score, cls))
    boxes = cxcywh_to_xyxy(rows[:, :4].index_select(0, passed))
    keep = grouped_nms(boxes, score, img if agnostic else img * (width - 5) + cls, iou_thres)
    keep = keep[torch.argsort(score[keep], descending=True, stable=True)]
    keep = keep[torch.argsort(img[keep], stable=True)]                         # (image, descending score)
    det = torch.cat((boxes[keep], score[keep, None], cls[keep, None].to(boxes.dtype)), dim=1)
    kept = torch.bincount(img[keep], minlength=batch).tolist()
    return [d[:max_det] for d in det.split(kept)]


def _candidate_scores(pred: Tensor, obj: Tensor, multi_label: bool) -> tuple[Tensor, Tensor]:
    """Scores and classes ``[B, M]``: one per box (its best class) or one per (box, class) pair."""
    batch, n, width = pred.shape
    if multi_label:
        scores = (pred[..., 5:] * obj[..., None]).flatten(1)                  # [B, N*C], index n*C + c
        _check_finite(scores)
        cls = torch.arange(width - 5, device=pred.device).repeat(n).expand(batch, -1)
        return scores, cls
    best, cls = pred[..., 5:].max(dim=-1)                                     # [B, N]
    _check_finite(best)
    return obj * best, cls


def _top_per_image_nms(pred, scores, cls, conf_thres, iou_thres, max_det, multi_label, agnostic):
    """Grouped NMS that only looks at each image's best candidates when that is provably enough.

    Greedy NMS decides a box using higher-scoring boxes only. So NMS over an image's top-k candidates keeps
    exactly the full run's keeps above the cut; if at least ``max_det`` survive, the image's final ``max_det``
    detections are known. Images that keep fewer are redone with 4x more candidates until the whole image has
    been seen. Dense low-threshold outputs (conf 0.001) become several times cheaper; nothing is approximated.
    """
    batch, m = scores.shape
    num_classes = pred.shape[2] - 5
    out = [pred.new_zeros((0, 6)) for _ in range(batch)]
    passing = (scores > conf_thres).sum(1)                                    # [B]
    todo = (passing > 0).nonzero(as_tuple=True)[0]
    k = 4 * max_det
    if len(todo) and int(passing.max()) <= 4 * k:
        k = int(passing.max())      # a second round would cost more than one full round: do that instead
    while len(todo):
        k = min(k, m)
        top, idx = scores[todo].topk(k, dim=1)                                # [b, k], sorted
        row, col = (top > conf_thres).nonzero(as_tuple=True)
        img, flat, score = todo[row], idx[row, col], top[row, col]
        box_cls = cls[img, flat]
        box = flat // num_classes if multi_label else flat
        boxes = cxcywh_to_xyxy(pred[img, box, :4])
        groups = img if agnostic else img * num_classes + box_cls
        keep = grouped_nms(boxes, score, groups, iou_thres).sort().values    # rows stay in (image, score) order
        kept = torch.bincount(img[keep], minlength=batch)
        done = (kept >= max_det) | (passing <= k)
        det = torch.cat((boxes[keep], score[keep, None], box_cls[keep, None].to(boxes.dtype)), dim=1)
        for i, d in zip(todo.tolist(), det.split(kept[todo].tolist())):
            if done[i]:
                out[i] = d[:max_det]
        todo = todo[~done[todo]]
        k *= 4
    return out


class _CallableModule(type(__import__("sys"))):
    """``yolokit.postprocess`` is both this module and the function: once ``import yolokit.postprocess`` has run
    (``model.predict`` does it), Python binds the module as the package's ``postprocess`` attribute, where the
    documented call ``yolokit.postprocess(pred, ...)`` expects the function. Calling the module calls it."""

    def __call__(self, *args, **kwargs):
        return postprocess(*args, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
