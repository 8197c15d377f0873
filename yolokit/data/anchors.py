"""Anchor boxes by k-means with the YOLOv2 distance ``d(box, centroid) = 1 - IoU(box, centroid)``
(Redmon & Farhadi 2017, sec. 2 "Dimension Clusters"), boxes and centroids compared by shape only (both
centred at the origin). Box sizes are taken in network pixels after the letterbox to ``imgsz``, which
is where Darknet's ``anchors =`` values live. Centroids are the mean of their cluster (the paper's
k-means); k-means++ seeding with the same distance, several seeded restarts, best mean IoU kept.

Reported figures:

* mean best IoU -- the average over boxes of the IoU with the best-matching anchor (the paper's
  "Avg IOU", Table 1);
* best possible recall (BPR) -- the fraction of boxes whose best anchor reaches IoU >= ``bpr_iou``
  (0.5 by default): the boxes a shape-matched anchor can claim at the usual positive threshold.
"""

from __future__ import annotations

import numpy as np

from yolokit.ops.boxes_np import shape_iou

# Darknet's anchors (network pixels, 416 input): yolov3-tiny.cfg (6), yolov3.cfg (9), and yolov2-voc.cfg's
# grid-unit anchors x 32 (5).
DEFAULT_ANCHORS = {
    5: [(42.31, 55.41), (102.17, 128.30), (161.79, 259.17), (303.08, 154.90), (359.56, 320.23)],
    6: [(10, 14), (23, 27), (37, 58), (81, 82), (135, 169), (344, 319)],
    9: [(10, 13), (16, 30), (33, 23), (30, 61), (62, 45), (59, 119), (116, 90), (156, 198), (373, 326)],
}


def anchor_fitness(wh: np.ndarray, anchors, bpr_iou: float = 0.5) -> tuple[float, float]:
    """``(mean best IoU, best possible recall)`` of ``anchors`` on box sizes ``wh [N, 2]``."""
    best = shape_iou(wh, np.asarray(anchors, float)).max(1)
    return float(best.mean()), float((best >= bpr_iou).mean())


def kmeans_anchors(wh: np.ndarray, n: int, seed: int = 0, restarts: int = 5, iters: int = 300) -> np.ndarray:
    """``n`` anchors ``[n, 2]`` (sorted by area) clustering ``wh [N, 2]`` with the 1 - IoU distance."""
    wh = np.asarray(wh, float)
    if len(wh) < n:
        from yolokit.errors import DataError

        raise DataError(f"k-means needs at least {n} boxes, the data has {len(wh)}")
    rng = np.random.default_rng(seed)
    best, best_fit = None, -1.0
    for _ in range(restarts):
        # k-means++ seeding: next centre drawn with probability proportional to its distance (1 - IoU)
        centres = [wh[rng.integers(len(wh))]]
        for _ in range(1, n):
            d = 1 - shape_iou(wh, np.array(centres)).max(1)
            centres.append(wh[rng.choice(len(wh), p=d / d.sum())] if d.sum() > 0 else wh[rng.integers(len(wh))])
        c = np.array(centres)
        assign = None
        for _ in range(iters):
            iou = shape_iou(wh, c)
            new = iou.argmax(1)
            if assign is not None and np.array_equal(new, assign):
                break
            assign = new
            for k in range(n):
                members = wh[assign == k]
                # an emptied cluster restarts at the worst-served box
                c[k] = members.mean(0) if len(members) else wh[iou.max(1).argmin()]
        fit = shape_iou(wh, c).max(1).mean()
        if fit > best_fit:
            best, best_fit = c.copy(), fit
    return best[np.argsort(best.prod(1))]


def box_sizes(dataset, imgsz: int) -> np.ndarray:
    """Widths and heights ``[N, 2]`` of every non-crowd box after letterboxing its image to ``imgsz``."""
    out = []
    for r in dataset.records:
        if not len(r.boxes):
            continue
        scale = imgsz / max(r.size)
        b = r.boxes[~r.iscrowd]
        out.append(np.stack([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1) * scale)
    wh = np.concatenate(out) if out else np.zeros((0, 2))
    return wh[(wh > 0).all(1)]


def darknet_line(anchors) -> str:
    """``anchors = 10,13,  16,30, ...`` rounded to integer pixels, as a Darknet cfg wants them."""
    return "anchors = " + ",  ".join(f"{int(round(w))},{int(round(h))}" for w, h in anchors)
