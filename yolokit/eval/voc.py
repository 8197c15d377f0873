"""Pascal VOC average precision at one IoU threshold, vectorised over the whole dataset.

Protocol (the VOC devkit's ``VOCevaldet.m``):

* detections of a class are taken in descending score order (a stable sort: ties keep input order);
* each detection is assigned the ground-truth box of its image and class with the highest IoU
  (the first one on ties) -- whether or not that box is already taken;
* IoU >= threshold and the box is ``difficult`` (or COCO ``iscrowd``): the detection is neither TP nor FP;
* IoU >= threshold and the box is not yet taken: TP, and the box is taken; otherwise FP;
* AP is the area under the interpolated precision envelope: VOC2010+ "all-point", or VOC2007's
  mean of the envelope at the 11 recalls 0, 0.1, ..., 1.

Because a detection's assigned box does not depend on what came before, the greedy loop of the
devkit reduces to "the first detection (in score order) assigned to a box wins", which is computed
for all images and classes at once with sorts and segment reductions -- no Python loop over images.

Pixel convention: ``pixel_offset=0`` (default) treats boxes as continuous (w = x2 - x1), like
pycocotools and yolokit's box ops; ``pixel_offset=1`` is the VOC devkit's inclusive-pixel
convention (w = x2 - x1 + 1), which the Cartucho/mAP tool also uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from yolokit.ops.boxes_np import elementwise_iou

# VOC2007 11-point recall levels, computed as the devkit's np.arange(0., 1.1, 0.1) does
# (0.30000000000000004, not 0.3: a recall of exactly 3/10 does not reach that level).
_RECALL_11 = np.arange(0.0, 1.1, 0.1)


def _as_numpy(x, dtype) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


@dataclass
class GroundTruth:
    """All ground-truth boxes of a dataset as flat arrays.

    ``boxes`` float64 ``[G, 4]`` xyxy pixels; ``labels`` int64 ``[G]`` contiguous class indices;
    ``image`` int64 ``[G]`` index into ``image_ids``; ``difficult`` / ``iscrowd`` bool ``[G]``;
    ``image_ids`` one id per image (images without boxes count too); ``sizes`` int ``[I, 2]``
    (height, width) or None; ``area`` float ``[G]`` (COCO's annotation area) or None, then box area is used;
    ``files`` the image file of each image or None (links detections given by file name).
    """

    boxes: np.ndarray
    labels: np.ndarray
    image: np.ndarray
    difficult: np.ndarray
    iscrowd: np.ndarray
    image_ids: list
    sizes: np.ndarray | None = None
    area: np.ndarray | None = None
    files: list | None = None

    def __post_init__(self):
        self.boxes = _as_numpy(self.boxes, np.float64).reshape(-1, 4)
        n = len(self.boxes)
        self.labels = _as_numpy(self.labels, np.int64).reshape(n)
        self.image = _as_numpy(self.image, np.int64).reshape(n)
        self.difficult = _as_numpy(self.difficult, bool).reshape(n)
        self.iscrowd = _as_numpy(self.iscrowd, bool).reshape(n)
        self.image_ids = list(self.image_ids)
        if self.sizes is not None:
            self.sizes = _as_numpy(self.sizes, np.int64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def num_images(self) -> int:
        return len(self.image_ids)

    @classmethod
    def from_lists(cls, boxes: Sequence, labels: Sequence, difficult: Sequence | None = None,
                   iscrowd: Sequence | None = None, image_ids: Sequence | None = None,
                   sizes: Sequence | None = None) -> "GroundTruth":
        """Per-image lists: ``boxes[i]`` ``[Ni, 4]`` xyxy pixels, ``labels[i]`` ``[Ni]``, optional flags."""
        n_img = len(boxes)
        counts = [len(_as_numpy(b, np.float64).reshape(-1, 4)) for b in boxes]

        def cat(items, dtype, width=None):
            if items is None:
                return np.zeros(sum(counts), dtype)
            parts = [_as_numpy(x, dtype).reshape(-1, width) if width else _as_numpy(x, dtype).reshape(-1)
                     for x in items]
            return np.concatenate(parts) if parts else np.zeros((0, width) if width else 0, dtype)

        return cls(boxes=cat(boxes, np.float64, 4), labels=cat(labels, np.int64),
                   image=np.repeat(np.arange(n_img), counts),
                   difficult=cat(difficult, bool), iscrowd=cat(iscrowd, bool),
                   image_ids=list(image_ids) if image_ids is not None else list(range(n_img)),
                   sizes=np.asarray(sizes).reshape(-1, 2) if sizes is not None else None)

    @classmethod
    def from_samples(cls, samples: Iterable) -> "GroundTruth":
        """From :class:`yolokit.data.Sample` or ``Record`` objects (anything with ``boxes``, ``labels``,
        ``image_id``, optional ``difficult``/``iscrowd``, and ``orig_size`` or ``size`` as (h, w))."""
        boxes, labels, diff, crowd, ids, sizes, files = [], [], [], [], [], [], []
        for s in samples:
            b = _as_numpy(s.boxes, np.float64).reshape(-1, 4)
            boxes.append(b)
            labels.append(_as_numpy(s.labels, np.int64).reshape(-1))
            d = getattr(s, "difficult", None)
            c = getattr(s, "iscrowd", None)
            diff.append(np.zeros(len(b), bool) if d is None else _as_numpy(d, bool).reshape(-1))
            crowd.append(np.zeros(len(b), bool) if c is None else _as_numpy(c, bool).reshape(-1))
            ids.append(s.image_id)
            size = getattr(s, "orig_size", None) or getattr(s, "size", None)
            sizes.append(tuple(size) if size is not None else (0, 0))
            files.append(str(getattr(s, "path", "") or ""))
        gt = cls.from_lists(boxes, labels, diff, crowd, ids, sizes)
        gt.files = files
        return gt


@dataclass
class Detections:
    """All detections of a dataset as flat arrays: ``boxes`` float64 ``[D, 4]`` xyxy pixels,
    ``scores`` ``[D]``, ``labels`` int64 ``[D]`` contiguous class indices, ``image`` int64 ``[D]``
    index into the ground truth's ``image_ids``."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    image: np.ndarray

    def __post_init__(self):
        self.boxes = _as_numpy(self.boxes, np.float64).reshape(-1, 4)
        n = len(self.boxes)
        self.scores = _as_numpy(self.scores, np.float64).reshape(n)
        self.labels = _as_numpy(self.labels, np.int64).reshape(n)
        self.image = _as_numpy(self.image, np.int64).reshape(n)

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def from_lists(cls, dets: Sequence) -> "Detections":
        """One ``(K, 6)`` tensor/array ``[x1, y1, x2, y2, score, class]`` per image, in
        ground-truth image order (the post-processor's and ``model.predict``'s output)."""
        arrays = [_as_numpy(d, np.float64).reshape(-1, 6) for d in dets]
        counts = [len(a) for a in arrays]
        flat = np.concatenate(arrays) if arrays else np.zeros((0, 6))
        return cls(flat[:, :4], flat[:, 4], flat[:, 5].astype(np.int64),
                   np.repeat(np.arange(len(arrays)), counts))

    def filter(self, keep: np.ndarray) -> "Detections":
        return Detections(self.boxes[keep], self.scores[keep], self.labels[keep], self.image[keep])


def pair_iou(a: np.ndarray, b: np.ndarray, pixel_offset: float = 0.0) -> np.ndarray:
    """IoU of matching rows ``[P, 4], [P, 4] -> [P]`` (xyxy). ``pixel_offset=1`` adds one pixel to
    widths and heights, the VOC devkit's inclusive-pixel convention."""
    if pixel_offset:  # inclusive pixels: the box ends one pixel past its last coordinate
        a = np.concatenate((a[:, :2], a[:, 2:4] + pixel_offset), 1)
        b = np.concatenate((b[:, :2], b[:, 2:4] + pixel_offset), 1)
    return elementwise_iou(a, b)


@dataclass
class Match:
    """Per-detection outcome of VOC matching: ``gt`` index of the assigned ground-truth box
    (-1: none of its class in its image), ``iou`` with it, ``tp`` and ``ignored`` (matched a
    difficult/crowd box) flags; a detection that is neither is a false positive."""

    gt: np.ndarray
    iou: np.ndarray
    tp: np.ndarray
    ignored: np.ndarray
    score_order: np.ndarray | None = None  # detection indices by descending score (stable)

    @property
    def fp(self) -> np.ndarray:
        return ~self.tp & ~self.ignored


def voc_match(gt: GroundTruth, det: Detections, iou_thres: float = 0.5,
              pixel_offset: float = 0.0) -> Match:
    """Match every detection to the ground truth as the VOC devkit does (see the module docstring)."""
    n_det = len(det)
    n_cls = int(max(gt.labels.max(initial=-1), det.labels.max(initial=-1))) + 1
    # Group ground truth by (image, class); a stable sort keeps file order inside a group, so the
    # first box wins IoU ties as in the devkit.
    key_gt = gt.image * n_cls + gt.labels
    order_gt = np.argsort(key_gt, kind="stable")
    key_sorted = key_gt[order_gt]
    key_det = det.image * n_cls + det.labels
    start = np.searchsorted(key_sorted, key_det, "left")
    count = np.searchsorted(key_sorted, key_det, "right") - start  # candidate boxes per detection
    total = int(count.sum())

    best_gt = np.full(n_det, -1, np.int64)
    best_iou = np.zeros(n_det)
    if total:
        # All (detection, candidate box) pairs, detection-major: pair p belongs to det pair_det[p].
        seg_start = np.cumsum(count) - count
        pair_det = np.repeat(np.arange(n_det), count)
        within = np.arange(total) - np.repeat(seg_start, count)
        pair_gt = order_gt[np.repeat(start, count) + within]
        iou = pair_iou(det.boxes[pair_det], gt.boxes[pair_gt], pixel_offset)  # [P]
        has = count > 0
        seg_max = np.maximum.reduceat(iou, seg_start[has])  # [D with candidates]
        is_max = iou == np.repeat(seg_max, count[has])
        first = np.flatnonzero(is_max)
        first = first[np.r_[True, pair_det[first][1:] != pair_det[first][:-1]]]  # first max per det
        best_gt[pair_det[first]] = pair_gt[first]
        best_iou[pair_det[first]] = iou[first]

    hit = (best_gt >= 0) & (best_iou >= iou_thres)  # the devkit's ovmax >= minoverlap
    safe_gt = np.where(hit, best_gt, 0)
    ignored = hit & (gt.difficult[safe_gt] | gt.iscrowd[safe_gt]) if len(gt) else np.zeros(n_det, bool)
    candidate = hit & ~ignored
    # The highest-scoring detection on each box is its TP; later ones are duplicates (FP).
    order = np.argsort(-det.scores, kind="stable")
    cand_sorted = order[candidate[order]]
    _, first_idx = np.unique(best_gt[cand_sorted], return_index=True)
    tp = np.zeros(n_det, bool)
    tp[cand_sorted[first_idx]] = True
    return Match(gt=best_gt, iou=best_iou, tp=tp, ignored=ignored, score_order=order)


def average_precision(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool = False) -> float:
    """AP from a PR curve (detections in descending score order).

    ``use_07_metric``: VOC2007 11-point interpolation; otherwise VOC2010+ area under the monotone
    precision envelope ("all-point")."""
    recall = np.asarray(recall, np.float64)
    precision = np.asarray(precision, np.float64)
    if use_07_metric:
        ap = 0.0
        for t in _RECALL_11:
            reached = precision[recall >= t]
            ap += (reached.max() if reached.size else 0.0) / 11.0
        return float(ap)
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # precision envelope
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


@dataclass
class ClassCurve:
    """One class's PR curve: ``scores``, ``tp`` (bool), ``recall``, ``precision`` per counted
    detection in descending score order; ``npos`` non-difficult ground-truth boxes."""

    scores: np.ndarray
    tp: np.ndarray
    recall: np.ndarray
    precision: np.ndarray
    npos: int


@dataclass
class VocResult:
    """Per-class AP (``ap`` all-point, ``ap07`` 11-point; NaN for a class without non-difficult
    ground truth), PR curves, and the per-detection :class:`Match`."""

    ap: np.ndarray
    ap07: np.ndarray
    npos: np.ndarray
    curves: list[ClassCurve]
    match: Match
    iou_thres: float
    pixel_offset: float
    extra: dict = field(default_factory=dict)

    @property
    def map(self) -> float:
        """Mean all-point AP over classes that have ground truth."""
        valid = self.npos > 0
        return float(self.ap[valid].mean()) if valid.any() else float("nan")

    @property
    def map07(self) -> float:
        valid = self.npos > 0
        return float(self.ap07[valid].mean()) if valid.any() else float("nan")

    def precision_recall_at(self, conf: float) -> dict:
        """Precision, recall and F1 over detections with score >= ``conf``: per class (arrays
        ``[C]``, NaN where undefined) and pooled over all classes (``precision``, ``recall``, ``f1``)."""
        n_cls = len(self.curves)
        tp = np.zeros(n_cls)
        ndet = np.zeros(n_cls)
        for c, cur in enumerate(self.curves):
            keep = cur.scores >= conf
            tp[c] = cur.tp[keep].sum()
            ndet[c] = keep.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            p = tp / ndet
            r = tp / self.npos
            f1 = 2 * p * r / (p + r)
            tp_all, det_all, pos_all = tp.sum(), ndet.sum(), self.npos.sum()
            p_all = tp_all / det_all if det_all else 0.0
            r_all = tp_all / pos_all if pos_all else float("nan")
            f1_all = 2 * p_all * r_all / (p_all + r_all) if (p_all + r_all) > 0 else 0.0
        return {"conf": conf, "precision": float(p_all), "recall": float(r_all), "f1": float(f1_all),
                "tp": int(tp_all), "fp": int(det_all - tp_all),
                "per_class_precision": p, "per_class_recall": r, "per_class_f1": f1,
                "per_class_tp": tp.astype(int), "per_class_ndet": ndet.astype(int)}


def voc_evaluate(gt: GroundTruth, det: Detections, num_classes: int | None = None,
                 iou_thres: float = 0.5, pixel_offset: float = 0.0) -> VocResult:
    """VOC AP per class (all-point and 11-point) at ``iou_thres``.

    ``num_classes`` defaults to the largest label seen + 1. Classes without non-difficult ground
    truth get AP NaN and are left out of the mean (their detections are counted nowhere), as in the
    devkit and the Cartucho tool."""
    if num_classes is None:
        num_classes = int(max(gt.labels.max(initial=-1), det.labels.max(initial=-1))) + 1
    m = voc_match(gt, det, iou_thres, pixel_offset)
    counted = gt.labels[~gt.difficult & ~gt.iscrowd]
    npos = np.bincount(counted, minlength=num_classes)[:num_classes]

    # Counted detections grouped by class, each group in descending score order: a stable sort by
    # class of the score order (small integer keys take numpy's radix sort).
    keep = m.score_order[~m.ignored[m.score_order]]
    key = det.labels[keep]
    if len(key) and 0 <= key.min() and key.max() < 2 ** 15:
        key = key.astype(np.int16)
    order = keep[np.argsort(key, kind="stable")]
    labels = det.labels[order]
    bounds = np.searchsorted(labels, np.arange(num_classes + 1))
    ap = np.full(num_classes, np.nan)
    ap07 = np.full(num_classes, np.nan)
    curves = []
    for c in range(num_classes):
        idx = order[bounds[c]:bounds[c + 1]]
        tp = m.tp[idx]
        ctp = np.cumsum(tp)
        cfp = np.arange(1, len(idx) + 1) - ctp
        rec = ctp / npos[c] if npos[c] else np.zeros(len(idx))
        prec = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
        curves.append(ClassCurve(det.scores[idx], tp, rec, prec, int(npos[c])))
        if npos[c]:
            ap[c] = average_precision(rec, prec, use_07_metric=False)
            ap07[c] = average_precision(rec, prec, use_07_metric=True)
    return VocResult(ap=ap, ap07=ap07, npos=npos, curves=curves, match=m,
                     iou_thres=iou_thres, pixel_offset=pixel_offset)
