"""The one post-processor every yolokit detector goes through: confidence filter + per-class NMS.

Layout in: ``pred`` is ``(B, N, 5+C)`` = ``[cx, cy, w, h]`` in network-input pixels, objectness, then ``C`` class
probabilities (YOLOv3's decoded layout). A candidate's score is objectness x class probability (YOLOv2 sec. 2;
the lectures' "class confidence = P(class) x IoU").

Layout out: a list of ``B`` tensors ``(K, 6)`` = ``[x1, y1, x2, y2, score, class]``, sorted by descending score;
``(0, 6)`` when nothing survives.

Only rows whose objectness passes ``conf_thres`` are read when that is selective (objectness bounds the score); the
candidates then go to the grouped NMS of :mod:`yolokit.ops.nms` (BENCHMARKS.md "nms"). ``yolokit.postprocess`` is
this module's :func:`postprocess`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from yolokit.ops.boxes import cxcywh_to_xyxy
from yolokit.ops.nms import diou_nms, flatnonzero, grouped_nms


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


def postprocess(pred: Tensor, conf_thres: float = 0.25, iou_thres: float = 0.45, max_det: int = 300,
                multi_label: bool = False, agnostic: bool = False,
                classes: list[int] | None = None, nms_beta: float | None = None) -> list[Tensor]:
    """Confidence filter + NMS for a batch of decoded YOLO predictions.

    Args:
        pred: ``(B, N, 5+C)`` float; ``[cx, cy, w, h]`` network pixels, objectness, C class probabilities in [0, 1].
        conf_thres: keep candidates whose score (objectness x class probability) is > this.
        iou_thres: suppress a box whose IoU with a higher-scoring box of the same group is > this.
        max_det: at most this many detections per image (the highest scores).
        multi_label: a box may be kept once per class whose score passes ``conf_thres``; otherwise only its best class.
        agnostic: NMS across classes instead of per class.
        classes: keep only these class indices.
        nms_beta: None for greedy IoU NMS; a number for Darknet's DIoU-NMS (``nms_kind=diounms``) with that
            ``beta_nms`` (:func:`yolokit.ops.nms.diou_nms`).
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
        flat = flatnonzero(obj.view(-1) > conf_thres)                             # [K] indices of image * N + box
        if 4 * len(flat) < obj.numel():
            return _selective_nms(pred, flat, conf_thres, iou_thres, max_det, agnostic, wanted, nms_beta)
    scores, cls = _candidate_scores(pred, obj, multi_label)                    # [B, M], M = N or N*C
    if wanted is not None:
        scores = torch.where(torch.isin(cls, wanted), scores, torch.zeros_like(scores))
    return _top_per_image_nms(pred, scores, cls, conf_thres, iou_thres, max_det, multi_label, agnostic, nms_beta)


def _nms(boxes, scores, groups, iou_thres, nms_beta):
    if nms_beta is None:
        return grouped_nms(boxes, scores, groups, iou_thres)
    return diou_nms(boxes, scores, groups, iou_thres, nms_beta)


def _selective_nms(pred, flat, conf_thres, iou_thres, max_det, agnostic, wanted, nms_beta=None):
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
    passed = flatnonzero(passed)
    img, score, cls = (t.index_select(0, passed) for t in (flat // n, score, cls))
    boxes = cxcywh_to_xyxy(rows[:, :4].index_select(0, passed))
    keep = _nms(boxes, score, img if agnostic else img * (width - 5) + cls, iou_thres, nms_beta)
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


def _top_per_image_nms(pred, scores, cls, conf_thres, iou_thres, max_det, multi_label, agnostic, nms_beta=None):
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
        keep = _nms(boxes, score, groups, iou_thres, nms_beta).sort().values  # rows stay in (image, score) order
        kept = torch.bincount(img[keep], minlength=batch)
        done = (kept >= max_det) | (passing <= k)
        det = torch.cat((boxes[keep], score[keep, None], box_cls[keep, None].to(boxes.dtype)), dim=1)
        for i, d in zip(todo.tolist(), det.split(kept[todo].tolist())):
            if done[i]:
                out[i] = d[:max_det]
        todo = todo[~done[todo]]
        k *= 4
    return out
