"""The one post-processor every yolokit detector goes through: confidence filter + per-class NMS.

Layout in: ``pred`` is ``(B, N, 5+C)`` = ``[cx, cy, w, h]`` in network-input pixels, objectness, then ``C`` class
probabilities (YOLOv3's decoded layout). A candidate's score is objectness x class probability (YOLOv2 sec. 2;
the lectures' "class confidence = P(class) x IoU").

Layout out: a list of ``B`` tensors ``(K, 6)`` = ``[x1, y1, x2, y2, score, class]``, sorted by descending score;
``(0, 6)`` when nothing survives.

How the NMS is organised (measured, see BENCHMARKS.md "nms"): greedy NMS costs O(n x kept) per call, so one
``torchvision.ops.nms`` call over everything (with per-class coordinate offsets) is far slower than many small calls.
torchvision's own ``batched_nms`` builds one boolean mask per class for each image. Here all candidates of the batch
are sorted once by (image, class), so every (image, class) group is a contiguous slice, and the kernel is called on
each slice; no per-class masks, no per-box Python work.
"""

from __future__ import annotations

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


def grouped_nms(boxes: Tensor, scores: Tensor, groups: Tensor, iou_thres: float) -> Tensor:
    """Exact greedy NMS applied independently within each group.

    Args:
        boxes: ``[K, 4]`` xyxy. scores: ``[K]``. groups: ``[K]`` int64 group id (e.g. image * C + class).
    Returns:
        int64 indices into ``boxes`` of the kept candidates, in no particular order.
        Identical keeps to ``torchvision.ops.batched_nms(boxes, scores, groups, iou_thres)``.
    """
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(groups, stable=True)                      # groups become contiguous slices
    counts = torch.unique_consecutive(groups[order], return_counts=True)[1].tolist()
    boxes, scores = boxes[order], scores[order]
    keeps, start = [], 0
    for n in counts:                                                # one small kernel call per group
        if n == 1:
            keeps.append(torch.tensor([start], device=boxes.device))
        else:
            keeps.append(torchvision.ops.nms(boxes[start:start + n], scores[start:start + n], iou_thres) + start)
        start += n
    return order[torch.cat(keeps)]


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
    num_classes = pred.shape[2] - 5
    obj = pred[..., 4]
    if torch.isnan(obj).any():
        raise ValueError("pred contains NaN objectness scores")
    scores, cls = _candidate_scores(pred, obj, conf_thres, multi_label)       # [B, M], M = N or N*C
    if classes is not None:
        wanted = torch.isin(cls, torch.as_tensor(classes, device=cls.device))
        scores = torch.where(wanted, scores, torch.zeros_like(scores))

    def candidates(images: Tensor, k: int):
        """The k best candidates of each listed image, as flat rows sorted by (image, descending score)."""
        top, idx = scores[images].topk(k, dim=1)                             # [b, k], sorted
        row, col = (top > conf_thres).nonzero(as_tuple=True)
        img, flat = images[row], idx[row, col]
        box = flat // num_classes if multi_label else flat
        return img, box, top[row, col], cls[img, flat]

    return _top_per_image_nms(pred, scores, conf_thres, candidates, iou_thres, max_det,
                              num_classes, agnostic)


def _candidate_scores(pred: Tensor, obj: Tensor, conf_thres: float, multi_label: bool) -> tuple[Tensor, Tensor]:
    """Scores and classes ``[B, M]``: one per box (its best class) or one per (box, class) pair."""
    batch, n, width = pred.shape
    if multi_label:
        scores = (pred[..., 5:] * obj[..., None]).flatten(1)                  # [B, N*C], index n*C + c
        _check_finite(scores)
        cls = torch.arange(width - 5, device=pred.device).repeat(n).expand(batch, -1)
        return scores, cls
    # max_c(obj * p_c) = obj * max_c(p_c) for obj >= 0 (rounding is monotonic): no B x N x C product.
    # Objectness bounds the score (class probabilities are <= 1), so when it is selective (conf 0.25) only the
    # rows that pass it are read; at conf 0.001 nearly every row passes and one max over the tensor is cheaper.
    flat = (obj.reshape(-1) > conf_thres).nonzero(as_tuple=True)[0]         # [K] indices of image * N + box
    if 4 * len(flat) < obj.numel():
        rows = pred.reshape(-1, width).index_select(0, flat)                 # [K, 5+C], a row gather
        best, best_cls = rows[:, 5:].max(dim=-1)
        _check_finite(best)
        scores = torch.zeros(batch * n, dtype=pred.dtype, device=pred.device)
        cls = torch.zeros(batch * n, dtype=torch.long, device=pred.device)
        scores[flat] = rows[:, 4] * best
        cls[flat] = best_cls
        return scores.view(batch, n), cls.view(batch, n)
    best, cls = pred[..., 5:].max(dim=-1)                                     # [B, N]
    _check_finite(best)
    return obj * best, cls


def _top_per_image_nms(pred, scores, conf_thres, candidates, iou_thres, max_det, num_classes, agnostic):
    """Grouped NMS that only looks at each image's best candidates when that is provably enough.

    Greedy NMS decides a box using higher-scoring boxes only. So NMS over an image's top-k candidates keeps
    exactly the full run's keeps above the cut; if at least ``max_det`` survive, the image's final ``max_det``
    detections are known. Images that keep fewer are redone with 4x more candidates until the whole image has
    been seen. Dense low-threshold outputs (conf 0.001) become several times cheaper; nothing is approximated.
    """
    batch, m = scores.shape
    out = [pred.new_zeros((0, 6)) for _ in range(batch)]
    passing = (scores > conf_thres).sum(1)                                    # [B]
    todo = (passing > 0).nonzero(as_tuple=True)[0]
    k = 4 * max_det
    if len(todo) and int(passing.max()) <= 4 * k:
        k = int(passing.max())      # a second round would cost more than one full round: do that instead
    while len(todo):
        k = min(k, m)
        img, box, score, cls = candidates(todo, k)
        boxes = cxcywh_to_xyxy(pred[img, box, :4])
        groups = img if agnostic else img * num_classes + cls
        keep = grouped_nms(boxes, score, groups, iou_thres).sort().values    # rows stay in (image, score) order
        kept = torch.bincount(img[keep], minlength=batch)
        done = (kept >= max_det) | (passing <= k)
        det = torch.cat((boxes[keep], score[keep, None], cls[keep, None].to(boxes.dtype)), dim=1)
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
