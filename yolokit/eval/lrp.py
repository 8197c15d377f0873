"""LRP error and optimal LRP (Oksuz et al., "Localization Recall Precision (LRP)", ECCV 2018, and "One
Metric to Measure them All", TPAMI 2022), on pycocotools' matching at IoU 0.5, as the authors' COCO api
(``kemaloksuz/LRP-Error``) computes it.

For one class, keeping the detections with score >= s (TP true positives with IoUs, FP, FN = boxes - TP):

    LRP(s) = ( sum over TP of (1 - IoU) / (1 - 0.5)  +  FP  +  FN ) / (TP + FP + FN)

a number in [0, 1], lower is better, that charges localisation, false positives and misses in one place.
oLRP = min over s (every detection's score, in pycocotools' order); its components at that point are
oLRP_Loc (mean 1 - IoU of the TPs), oLRP_FP (FP / (TP + FP)), oLRP_FN (FN / boxes), and the score there is
the class's LRP-optimal threshold. A class with ground truth but no true positive has oLRP 1 (Loc, FP
undefined); classes without ground truth are left out. moLRP is the mean over classes.
"""

from __future__ import annotations

import numpy as np


def lrp_from_cocoeval(ev, iou_index: int = 0, area_index: int = 0, max_det: int | None = None) -> dict:
    """oLRP per category from an evaluated ``COCOeval`` (``evaluate()`` done; ``params.iouThrs[iou_index]``
    is the LRP threshold, normally 0.5). The detection IoUs come from ``ev.ious`` (stock pycocotools keeps
    them per image and category; its ``evalImgs`` only keep the matched ground-truth ids).

    Returns ``{"moLRP", "moLRP_loc", "moLRP_fp", "moLRP_fn", "per_category": {cat_id: {"oLRP", "loc", "fp",
    "fn", "threshold"}}}``."""
    p = ev.params
    tau = float(p.iouThrs[iou_index])
    max_det = max_det or p.maxDets[-1]
    n_img, n_area = len(p.imgIds), len(p.areaRng)
    per_cat = {}
    for k, cat in enumerate(p.catIds):
        scores, tps, fps, ious = [], [], [], []
        npig = 0
        for i, img in enumerate(p.imgIds):
            e = ev.evalImgs[k * n_area * n_img + area_index * n_img + i]
            if e is None:
                continue
            dtm = np.asarray(e["dtMatches"][iou_index, :max_det])
            dig = np.asarray(e["dtIgnore"][iou_index, :max_det], bool)
            npig += int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0))
            tp = (dtm > 0) & ~dig
            iou = np.zeros(len(dtm))
            if tp.any():
                # ev.ious rows: this image's detections of the class by score (the order of dtMatches);
                # columns: its ground truth in the order of ev._gts
                col = {g["id"]: j for j, g in enumerate(ev._gts[img, cat])}
                rows = np.flatnonzero(tp)
                iou[rows] = ev.ious[img, cat][rows, [col[int(g)] for g in dtm[rows]]]
            scores.append(np.asarray(e["dtScores"][:max_det], float))
            tps.append(tp)
            fps.append((dtm == 0) & ~dig)
            ious.append(iou)
        if npig == 0:
            continue
        row = {"oLRP": 1.0, "loc": None, "fp": None, "fn": 1.0, "threshold": None}
        if scores:
            s = np.concatenate(scores)
            order = np.argsort(-s, kind="mergesort")  # pycocotools' (and the LRP api's) order
            tp_num = np.cumsum(np.concatenate(tps)[order])
            fp_num = np.cumsum(np.concatenate(fps)[order])
            if len(tp_num) and tp_num[-1] > 0:
                fn_num = npig - tp_num
                total_loc = tp_num - np.cumsum(np.concatenate(ious)[order])
                lrps = (total_loc / (1 - tau) + fp_num + fn_num) / (tp_num + fp_num + fn_num)
                j = int(np.argmin(lrps))
                row = {"oLRP": float(lrps[j]), "loc": float(total_loc[j] / tp_num[j]),
                       "fp": float(fp_num[j] / (tp_num[j] + fp_num[j])), "fn": float(fn_num[j] / npig),
                       "threshold": float(s[order][j])}
        per_cat[int(cat)] = row

    def mean(key):
        v = [r[key] for r in per_cat.values() if r[key] is not None]
        return float(np.mean(v)) if v else None

    return {"moLRP": mean("oLRP"), "moLRP_loc": mean("loc"), "moLRP_fp": mean("fp"), "moLRP_fn": mean("fn"),
            "iou": tau, "per_category": per_cat}
