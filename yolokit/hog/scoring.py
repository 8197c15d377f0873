"""Scoring detections of one class against a dataset with yolokit's evaluator (VOC and COCO protocols)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def one_class_truth(samples: Sequence, class_index: int):
    """Ground truth of one class only, relabelled 0 (difficult / crowd flags kept)."""
    from yolokit.eval import GroundTruth

    class View:  # the fields GroundTruth.from_samples reads
        def __init__(self, s):
            keep = np.asarray(s.labels) == class_index
            self.boxes = np.asarray(s.boxes)[keep]
            self.labels = np.zeros(int(keep.sum()), np.int64)
            self.difficult = np.asarray(s.difficult)[keep]
            self.iscrowd = np.asarray(s.iscrowd)[keep]
            self.image_id, self.orig_size, self.path = s.image_id, s.orig_size, s.path

    return GroundTruth.from_samples(View(s) for s in samples)


def score(samples: Sequence, dets: Sequence, class_index: int = 0, name: str = "object") -> dict:
    """AP of one class's detections.

    Args:
        samples: dataset samples (boxes in the same pixels as the detections).
        dets: one ``(K, 6)`` ``[x1, y1, x2, y2, score, class]`` per sample; only class 0 rows are scored
            (a one-class detector), against the ground truth of ``class_index``.
    Returns:
        ``{"AP50": COCO AP at IoU .5, "AP": COCO AP@[.5:.95], "voc": VOC all-point AP50 (difficult ignored),
        "voc07": 11-point, "gt": boxes counted, "dets": detections}``.
    """
    from yolokit.eval import (Detections, coco_evaluate, coco_image_ids, detections_to_coco,
                              ground_truth_to_coco, voc_evaluate)

    gt = one_class_truth(samples, class_index)
    rows = [np.asarray(d, np.float64).reshape(-1, 6) for d in dets]
    rows = [r[r[:, 5] == 0] for r in rows]
    det = Detections.from_lists(rows)
    voc = voc_evaluate(gt, det, num_classes=1)
    ids = coco_image_ids(gt.image_ids)
    coco = coco_evaluate(ground_truth_to_coco(gt, [1], [name], ids), detections_to_coco(det, ids, [1]))
    return {"AP50": coco.stats["AP50"], "AP": coco.stats["AP"], "voc": float(voc.ap[0]),
            "voc07": float(voc.ap07[0]), "gt": int((~gt.difficult & ~gt.iscrowd).sum()), "dets": len(det)}
