"""Training a HOG + linear-SVM detector (Dalal & Triggs 2005, sec. 3-4), one class.

1. Window: its aspect ratio is the median ``w / h`` of the training boxes; its inner area is ``inner**2``
   pixels, surrounded by a ``margin`` of context (Dalal-Triggs: a 64x128 window around a 48x96 person).
   Scale range: objects smaller than ``0.8 x`` the 2nd percentile of the training boxes' sizes (relative to
   the image) are not searched for, which skips the finest -- costliest, most false-positive-prone -- levels.
2. Positives: every training box warped onto the window's inner area (plus its mirror image and
   ``jitter`` randomly shifted/scaled copies).
3. Negatives: random windows of the training images' pyramids whose object box overlaps no ground truth
   (IoU < ``neg_iou``).
4. A LinearSVC is fitted; then ``rounds`` of hard-negative mining: scan every training image, add the
   highest-scoring false windows (IoU < ``neg_iou``, raw score > -1), refit.
5. Platt calibration: scan the training images once more, NMS, mark each detection TP/FP (IoU >= 0.5, one
   detection per box) and fit ``p = sigmoid(a * s + b)`` to the raw scores.

Features for training are read out of whole-image block grids exactly as the scanner reads them, so a window
scores the same at training and at detection time.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from yolokit.errors import DataError
from yolokit.hog.features import HogParams, level_grid, window_grids
from yolokit.hog.model import HogSvmDetector
from yolokit.hog.scan import correlate, pyramid_level
from yolokit.ops.boxes_np import box_iou


def window_for(boxes: np.ndarray, inner: int = 48, margin: int = 8, stride: int = 8,
               block: int = 16) -> tuple[tuple[int, int], tuple[int, int]]:
    """Window ``(w, h)`` and margin ``(mx, my)`` for a set of ``[N, 4]`` xyxy boxes: median aspect ratio,
    inner area about ``inner**2``, sides rounded to ``block + k * stride``."""
    wh = boxes[:, 2:] - boxes[:, :2]
    aspect = float(np.median(wh[:, 0] / np.maximum(wh[:, 1], 1e-6))) if len(boxes) else 1.0

    def side(length):
        return max(block, block + stride * round((length + 2 * margin - block) / stride))

    return (side(inner * math.sqrt(aspect)), side(inner / math.sqrt(aspect))), (margin, margin)


def object_grid(image: np.ndarray, box: np.ndarray, params: HogParams, margin: tuple[int, int],
                flip: bool = False) -> np.ndarray:
    """The window grid ``[wy * wx * D]`` of ``box`` (xyxy) warped onto the window's inner area.

    One stride of extra context is warped around the window so that the gradients at its border are those of
    the image (as when scanning), then dropped.
    """
    import cv2

    ww, wh = params.window
    mx, my = margin
    s = params.stride
    x1, y1, x2, y2 = (float(v) for v in box)
    sx = (ww - 2 * mx) / max(x2 - x1, 1.0)
    sy = (wh - 2 * my) / max(y2 - y1, 1.0)
    ox, oy = x1 - (mx + s) / sx, y1 - (my + s) / sy
    m = np.array([[sx, 0, -ox * sx], [0, sy, -oy * sy]], np.float64)
    # INTER_AREA-like smoothing for strong down-scaling, as a pyramid level would be (resize averages).
    src = image
    shrink = min(sx, sy)
    if shrink < 0.5:
        k = int(round(1 / shrink))
        src = cv2.resize(image, None, fx=1 / k, fy=1 / k, interpolation=cv2.INTER_AREA)
        m[:, :2] *= k
    crop = cv2.warpAffine(src, m, (ww + 2 * s, wh + 2 * s), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)
    if flip:
        crop = np.ascontiguousarray(crop[:, ::-1])
    grid = level_grid(crop, params)[1:-1, 1:-1]
    return grid.reshape(-1)


class _Images:
    """Training images (resized so the longer side is ``max_side``, as detection will) with their boxes."""

    def __init__(self, dataset, class_index: int, max_side: int | None):
        import cv2

        self.items = []
        for i in range(len(dataset)):
            s = dataset[i]
            keep = (s.labels == class_index) & ~s.difficult & ~s.iscrowd
            image, boxes = s.image, s.boxes[keep].astype(np.float32)
            h, w = image.shape[:2]
            f = max(h, w) / max_side if max_side else 1.0
            if f != 1.0:
                interp = cv2.INTER_AREA if f > 1 else cv2.INTER_LINEAR
                image = cv2.resize(image, (round(w / f), round(h / f)), interpolation=interp)
                boxes = boxes / f
            # boxes of the class that we must not use as negatives (difficult / crowd ones included)
            avoid = s.boxes[s.labels == class_index].astype(np.float32) / f
            self.items.append((image, boxes, avoid))


def _level_windows(image, factor, model: HogSvmDetector):
    """Grid and raw scores of one pyramid level, and the object box of every window position."""
    p = model.params
    grid = level_grid(pyramid_level(image, factor, model.pad), p)
    scores = correlate(grid, model.weights, model.bias)
    ys, xs = np.mgrid[0:scores.shape[0], 0:scores.shape[1]]
    ww, wh = p.window
    mx, my = model.margin
    x1 = (xs.ravel() * p.stride - model.pad + mx) * factor
    y1 = (ys.ravel() * p.stride - model.pad + my) * factor
    boxes = np.stack([x1, y1, x1 + (ww - 2 * mx) * factor, y1 + (wh - 2 * my) * factor], 1)
    return grid, scores.ravel(), ys.ravel(), xs.ravel(), boxes


def _negatives(images: _Images, model: HogSvmDetector, per_image: int, neg_iou: float, rng,
               hard: bool) -> np.ndarray:
    """Random (``hard=False``) or highest-scoring false (``hard=True``) windows of every training image."""
    feats = []
    for image, _, avoid in images.items:
        h, w = image.shape[:2]
        factors = model.pyramid((w, h))
        if not factors:
            continue
        if not hard:  # a few random levels are enough for random negatives
            factors = list(rng.choice(factors, size=min(3, len(factors)), replace=False))
        cands = []  # (score, level index, row, col)
        grids = []
        for li, f in enumerate(factors):
            grid, scores, ys, xs, boxes = _level_windows(image, f, model)
            ok = box_iou(boxes, avoid).max(axis=1, initial=0.0) < neg_iou
            if hard:
                ok &= scores > -1.0
            idx = np.nonzero(ok)[0]
            grids.append(grid)
            cands.append(np.stack([scores[idx], np.full(len(idx), li), ys[idx], xs[idx]], 1))
        cands = np.concatenate(cands)
        if len(cands) == 0:
            continue
        if hard:
            cands = cands[np.argsort(-cands[:, 0])[:per_image]]
        else:
            cands = cands[rng.choice(len(cands), size=min(per_image, len(cands)), replace=False)]
        for li in np.unique(cands[:, 1]).astype(int):
            sel = cands[cands[:, 1] == li]
            feats.append(window_grids(grids[li], sel[:, 2].astype(int), sel[:, 3].astype(int), model.params))
    d = int(np.prod(model.weights.shape))
    return np.concatenate(feats) if feats else np.zeros((0, d), np.float32)


def _positives(images: _Images, model: HogSvmDetector, jitter: int, rng) -> np.ndarray:
    feats = []
    for image, boxes, _ in images.items:
        for box in boxes:
            variants = [box]
            wh = box[2:] - box[:2]
            for _ in range(jitter):  # shift by up to 5% and rescale by up to 5% of the box
                c = (box[:2] + box[2:]) / 2 + rng.uniform(-0.05, 0.05, 2) * wh
                half = wh / 2 * rng.uniform(0.95, 1.05)
                variants.append(np.concatenate([c - half, c + half]))
            for v in variants:
                for flip in (False, True):
                    feats.append(object_grid(image, v, model.params, model.margin, flip))
    return np.stack(feats).astype(np.float32)


def _fit_svm(pos: np.ndarray, neg: np.ndarray, c: float, seed: int):
    from sklearn.svm import LinearSVC

    x = np.concatenate([pos, neg])
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    # squared hinge solved in the primal: several times faster than the hinge dual at this size (n >> d)
    svm = LinearSVC(C=c, loss="squared_hinge", dual=False, max_iter=5000, random_state=seed)
    svm.fit(x, y)
    return svm.coef_.astype(np.float32).reshape(-1), float(svm.intercept_[0])


def calibrate(model: HogSvmDetector, images: _Images, iou: float = 0.45) -> tuple[float, float]:
    """Platt sigmoid ``(a, b)`` fitted to TP/FP-labelled detections (after NMS) on ``images``."""
    import torch
    from sklearn.linear_model import LogisticRegression

    from yolokit.ops.nms import nms_xyxy

    scores, labels = [], []
    for image, boxes, avoid in images.items:
        det, raw = model.windows(image, imgsz=0)  # already at the model's size
        if len(det) == 0:
            continue
        keep = nms_xyxy(torch.from_numpy(det), torch.from_numpy(raw), torch.zeros(len(det)), iou).numpy()
        det, raw = det[keep], raw[keep]
        overlap = box_iou(det, boxes)  # not `iou`: that is the NMS threshold of the next image
        tp = np.zeros(len(det), bool)
        taken = np.zeros(len(boxes), bool)
        for k in range(len(det)):  # score order; one detection per ground-truth box
            if overlap.shape[1] == 0:
                break
            j = int(np.argmax(overlap[k]))
            if overlap[k, j] >= 0.5 and not taken[j]:
                tp[k] = taken[j] = True
        scores.append(raw)
        labels.append(tp)
    s = np.concatenate(scores) if scores else np.zeros(0)
    t = np.concatenate(labels) if labels else np.zeros(0, bool)
    if t.all() or not t.any():
        return 1.0, 0.0
    lr = LogisticRegression(C=100.0).fit(s[:, None], t)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def train(dataset, class_index: int = 0, class_name: str | None = None, inner: int = 64, margin: int = 8,
          scale: float = 1.1, imgsz: int | None = 480, pad: int = 16, rounds: int = 2, c: float = 1.0,
          neg_per_image: int = 30, hard_per_image: int = 20, neg_iou: float = 0.3, jitter: int = 1,
          min_object_quantile: float | None = 0.02,
          seed: int = 0, log: Callable[[str], None] | None = None) -> HogSvmDetector:
    """Train a one-class HOG + linear-SVM detector on a yolokit dataset (items are ``Sample``).

    Args:
        dataset: indexable dataset of samples (``yolokit.data.load_dataset(..., split="train")``).
        class_index: the class to detect; class_name: its name (stored in the model).
        inner, margin: window geometry (see :func:`window_for`). scale: pyramid ratio.
        imgsz: training images are resized so their longer side is this (None: keep); stored as the
            model's ``imgsz`` so detection does the same (HOG's ``imgsz`` is the longer image side). pad: mirrored border of every pyramid level, in
            pixels, so that objects touching the image edge still fit a window with its context margin.
        rounds: hard-negative mining rounds after the first fit. c: LinearSVC's C.
        min_object_quantile: the smallest object searched for is 0.8 x this quantile of the training boxes'
            relative sizes (None: search every level).
    Returns:
        the trained, calibrated :class:`HogSvmDetector`.
    """
    log = log or (lambda msg: None)
    rng = np.random.default_rng(seed)
    images = _Images(dataset, class_index, imgsz)
    all_boxes = np.concatenate([b for _, b, _ in images.items]) if images.items else np.zeros((0, 4))
    if len(all_boxes) == 0:
        raise DataError(f"no training boxes of class {class_name or class_index} in the dataset")
    window, marg = window_for(all_boxes, inner, margin)
    min_object = 0.0
    if min_object_quantile is not None:
        rel = np.concatenate([np.sqrt(np.prod(b[:, 2:] - b[:, :2], axis=1)) / max(im.shape[:2])
                              for im, b, _ in images.items if len(b)])
        min_object = 0.8 * float(np.quantile(rel, min_object_quantile))
    params = HogParams(window)
    wy, wx = params.window_blocks
    model = HogSvmDetector(params, np.zeros((wy, wx, params.block_dim), np.float32), 0.0, margin=marg,
                           scale=scale, imgsz=imgsz or 0, pad=pad, min_object=min_object,
                           class_names=[class_name or str(class_index)])
    pos = _positives(images, model, jitter, rng)
    neg = _negatives(images, model, neg_per_image, neg_iou, rng, hard=False)
    log(f"window {window[0]}x{window[1]} (margin {marg[0]}), objects >= {min_object:.3f} of the image side, "
        f"{len(all_boxes)} boxes in {len(images.items)} "
        f"images -> {len(pos)} positives, {len(neg)} random negatives")
    for r in range(rounds + 1):
        w, b = _fit_svm(pos, neg, c, seed)
        model.weights, model.bias = w.reshape(wy, wx, -1), b
        if r == rounds:
            break
        hard = _negatives(images, model, hard_per_image, neg_iou, rng, hard=True)
        log(f"round {r + 1}/{rounds}: {len(hard)} hard negatives (total {len(neg) + len(hard)})")
        neg = np.concatenate([neg, hard])
    model.calib = calibrate(model, images)
    log(f"calibration: p = sigmoid({model.calib[0]:.3f} * s + {model.calib[1]:.3f})")
    return model
