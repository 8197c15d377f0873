"""Operating thresholds: the per-class score at which F1 peaks (VOC matching at the evaluation IoU), with
the precision and recall there; written to ``metrics.json`` as ``"thresholds"`` and read back by
``yolokit detect --conf-file metrics.json``.

A threshold ``t`` keeps detections with score >= t, so F1 is taken only where the score changes (after
the last of equal scores); on equal F1 the higher threshold wins (fewer detections, same F1)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from yolokit.errors import DataError


def f1_optimal_thresholds(voc, class_names: Sequence[str]) -> dict:
    """``{"iou": t, "per_class": {name: {"conf", "precision", "recall", "f1", "n_gt"}}}`` from a
    :class:`yolokit.eval.VocResult` (its per-class PR curves). ``conf`` is None for a class without
    ground truth or without a true positive."""
    per_class = {}
    for name, cur in zip(class_names, voc.curves):
        row = {"conf": None, "precision": None, "recall": None, "f1": None, "n_gt": int(cur.npos)}
        if cur.npos and cur.tp.any():
            last = np.r_[cur.scores[1:] != cur.scores[:-1], True]  # end of each run of equal scores
            p, r = cur.precision[last], cur.recall[last]
            f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
            k = int(np.argmax(f1))  # first max: the highest threshold reaching it
            row.update(conf=float(cur.scores[last][k]), precision=float(p[k]), recall=float(r[k]),
                       f1=float(f1[k]))
        per_class[name] = row
    return {"iou": voc.iou_thres, "per_class": per_class}


def load_class_thresholds(path: str | Path, class_names: Sequence[str], default: float) -> np.ndarray:
    """Per-class score thresholds ``[C]`` (model class order) from a ``metrics.json`` of ``yolokit eval``
    (its ``"thresholds"``), or a plain ``{name: conf}`` JSON. A class the file has no threshold for
    gets ``default`` (the command's ``--conf``). Classes are matched by name."""
    from yolokit.fileio import load_json, read_bytes

    data = load_json(read_bytes(path, "thresholds JSON", 256 << 20), str(path))
    if isinstance(data, dict) and "thresholds" in data:
        data = {k: v.get("conf") for k, v in data["thresholds"]["per_class"].items()}
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected metrics.json of `yolokit eval` or {{class name: conf}}")
    if not class_names:
        raise DataError(f"{path}: per-class thresholds need the model's class names")
    unknown = sorted(set(data) - set(class_names))
    if unknown and len(unknown) == len(data):
        raise DataError(f"{path}: none of its classes ({', '.join(unknown[:5])}, ...) is a class of the model")
    out = np.full(len(class_names), float(default))
    for c, name in enumerate(class_names):
        v = data.get(name)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            out[c] = float(v)
    return out


def filter_by_class(dets, thresholds: np.ndarray):
    """Keep the rows of a ``(K, 6)`` ``[x1, y1, x2, y2, score, class]`` tensor/array whose score reaches
    its class's threshold (``thresholds[class]``; a class beyond the table is kept at any score)."""
    if len(dets) == 0:
        return dets
    import torch

    if isinstance(dets, torch.Tensor):
        thr = torch.as_tensor(thresholds, dtype=dets.dtype, device=dets.device)
        cls = dets[:, 5].long()
        inside = cls < len(thr)
        need = torch.where(inside, thr[cls.clamp(max=len(thr) - 1)], torch.zeros_like(dets[:, 4]))
        return dets[dets[:, 4] >= need]
    dets = np.asarray(dets)
    cls = dets[:, 5].astype(int)
    need = np.where(cls < len(thresholds), np.asarray(thresholds)[np.minimum(cls, len(thresholds) - 1)], 0.0)
    return dets[dets[:, 4] >= need]


class ClassThresholdPredictor:
    """A :class:`yolokit.models.predict.Predictor` that predicts at the lowest per-class threshold, then keeps
    each detection at or above its own class's threshold. Every other attribute is the wrapped one's."""

    def __init__(self, predictor, thresholds: np.ndarray):
        self._predictor = predictor
        self.thresholds = np.asarray(thresholds, float)
        predictor.conf = float(self.thresholds.min())  # the NMS sees every candidate any class could keep

    def __getattr__(self, name):
        return getattr(self._predictor, name)

    def postprocess(self, pred, batch):
        return [filter_by_class(d, self.thresholds) for d in self._predictor.postprocess(pred, batch)]

    def __call__(self, images):
        return [filter_by_class(d, self.thresholds) for d in self._predictor(images)]


def apply_class_thresholds(predictor, path: str | Path, class_names: Sequence[str] | None):
    """``predictor`` using the per-class thresholds of ``path`` (:func:`load_class_thresholds`; classes it
    lacks keep the predictor's ``conf``)."""
    return ClassThresholdPredictor(predictor, load_class_thresholds(path, class_names or [], predictor.conf))
