"""LRP / oLRP: a hand-computed case, and a from-scratch loop (matching included) on real detections."""

import numpy as np
import pytest

from tests.eval.tide_ref import rodm_dataset
from yolokit.eval import Detections, GroundTruth, evaluate
from yolokit.eval.inputs import ground_truth_from


def test_hand_computed_olrp(tmp_path):
    gt = GroundTruth.from_lists([np.array([[0, 0, 10, 10.]]), np.array([[0, 0, 10, 10.]])], [[0], [0]],
                                sizes=[(20, 20), (20, 20)])
    det = Detections.from_lists([np.array([[0, 0, 10, 10, .9, 0], [5, 5, 20, 20, .8, 0]]),
                                 np.array([[0, 0, 10, 7.5, .7, 0]])])  # IoU 1; FP; IoU 0.75
    lrp = evaluate(gt, det, ["c"], metrics=["coco"], analysis=True, save_dir=tmp_path)["analysis"]["lrp"]
    # s=.9: (0 + 0 + 1) / 2 = .5; s=.8: (0 + 1 + 1) / 3; s=.7: ((1 - .75) / .5 + 1 + 0) / 3 = .5 -> first min
    assert lrp["moLRP"] == pytest.approx(0.5)
    assert lrp["per_class"]["c"] == {"oLRP": 0.5, "loc": 0.0, "fp": 0.0, "fn": 0.5, "threshold": 0.9}


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def loop_olrp(gt, det, c, tau=0.5):
    """COCO matching (per image: by score, best free box with IoU >= tau) and LRP at every detection."""
    rows = []  # (score, order, is_tp, iou)
    for i in range(gt.num_images):
        g = [gt.boxes[j] for j in np.flatnonzero((gt.image == i) & (gt.labels == c))]
        d = np.flatnonzero((det.image == i) & (det.labels == c))
        d = d[np.argsort(-det.scores[d], kind="mergesort")][:100]
        used = [False] * len(g)
        for k in d:
            best, m = min(tau, 1 - 1e-10), -1
            for j, box in enumerate(g):
                v = _iou(det.boxes[k], box)
                if not used[j] and v >= best:
                    best, m = v, j
            if m >= 0:
                used[m] = True
            rows.append((det.scores[k], len(rows), m >= 0, best if m >= 0 else 0.0))
    npos = int(((gt.labels == c)).sum())
    rows.sort(key=lambda r: (-r[0], r[1]))
    best = (1.0, None)
    tp = fp = 0
    loc = 0.0
    for s, _, is_tp, v in rows:
        tp, fp, loc = tp + is_tp, fp + (not is_tp), loc + (1 - v if is_tp else 0.0)
        if tp:
            lrp = (loc / (1 - tau) + fp + npos - tp) / (tp + fp + npos - tp)
            if best[1] is None or lrp < best[0]:
                best = (lrp, s)
    return best


def test_olrp_equals_a_loop_on_rodm(shared, tmp_path):
    ds, dets = rodm_dataset(shared)
    gt, det = ground_truth_from(ds), Detections.from_lists(dets)
    m = evaluate(ds, dets, metrics=["coco"], analysis=True, save_dir=tmp_path)
    per = m["analysis"]["lrp"]["per_class"]
    assert len(per) == 20
    for c, name in enumerate(ds.class_names):
        ref, thr = loop_olrp(gt, det, c)
        assert per[name]["oLRP"] == pytest.approx(ref, abs=1e-4), name  # (JSON rounds to 4 digits)
        if thr is not None:
            assert per[name]["threshold"] == pytest.approx(thr, abs=1e-4), name
    assert 0 < m["analysis"]["lrp"]["moLRP"] < 1
