"""Detection confusion matrix: which class each ground-truth box was detected as.

Detections with score >= ``conf`` are paired one-to-one with ground-truth boxes of any class by
descending IoU (pairs below ``iou_thres`` never match). The matrix is ``[C + 1, C + 1]``: rows are the
true class, columns the predicted class; the last row counts detections that matched nothing
(background false positives), the last column boxes that nothing matched (missed). Difficult and crowd
boxes are neither counted nor missed, and a detection that matches one is dropped.
"""

from __future__ import annotations

import numpy as np

from yolokit.eval.voc import Detections, GroundTruth
from yolokit.ops.boxes_np import box_iou


def confusion_matrix(gt: GroundTruth, det: Detections, num_classes: int, conf: float = 0.25,
                     iou_thres: float = 0.5) -> np.ndarray:
    """``[C + 1, C + 1]`` int64 counts (rows true, columns predicted, index C = background)."""
    bg = num_classes
    matrix = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    keep = (det.scores >= conf) & (det.labels >= 0) & (det.labels < num_classes)
    det = det.filter(keep)
    g_order = np.argsort(gt.image, kind="stable")
    d_order = np.argsort(det.image, kind="stable")
    n_img = max(gt.num_images, int(det.image.max(initial=-1)) + 1)
    g_bounds = np.searchsorted(gt.image[g_order], np.arange(n_img + 1))
    d_bounds = np.searchsorted(det.image[d_order], np.arange(n_img + 1))
    for i in range(n_img):
        gi = g_order[g_bounds[i]:g_bounds[i + 1]]
        di = d_order[d_bounds[i]:d_bounds[i + 1]]
        g_lab, d_lab = gt.labels[gi], det.labels[di]
        g_skip = gt.difficult[gi] | gt.iscrowd[gi]
        g_hit = np.zeros(len(gi), bool)
        d_hit = np.zeros(len(di), bool)
        if len(gi) and len(di):
            iou = box_iou(gt.boxes[gi], det.boxes[di])  # [G_i, D_i]
            g, d = np.nonzero(iou >= iou_thres)
            order = np.argsort(-iou[g, d], kind="stable")
            g, d = g[order], d[order]
            # one-to-one: the highest-IoU pair wins each detection, then each box
            _, first = np.unique(d, return_index=True)
            g, d = g[np.sort(first)], d[np.sort(first)]
            _, first = np.unique(g, return_index=True)
            g, d = g[first], d[first]
            g_hit[g] = True
            d_hit[d] = True
            counted = ~g_skip[g]
            np.add.at(matrix, (g_lab[g[counted]], d_lab[d[counted]]), 1)
        np.add.at(matrix, (g_lab[~g_hit & ~g_skip], bg), 1)
        np.add.at(matrix, (bg, d_lab[~d_hit]), 1)
    return matrix
