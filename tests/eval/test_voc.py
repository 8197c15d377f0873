"""VOC AP: hand-computed cases, devkit-loop equivalence, and the shared reference numbers."""

import re

import numpy as np
import pytest
import torch

from tests.eval.refs import cartucho_reference, read_cartucho, rodm_voc_reference
from yolokit.eval import Detections, GroundTruth, average_precision, pair_iou, voc_evaluate, voc_match


def one_image(gt_boxes, gt_labels, dets, difficult=None):
    gt = GroundTruth.from_lists([np.array(gt_boxes, float)], [gt_labels],
                                None if difficult is None else [difficult])
    return gt, Detections.from_lists([np.array(dets, float).reshape(-1, 6)])


# ----------------------------------------------------------------------------- hand-computed
def test_pixel_conventions():
    a = np.array([[0.0, 0, 10, 10]])
    b = np.array([[5.0, 0, 15, 10]])
    assert pair_iou(a, b, 0)[0] == pytest.approx(50 / 150)  # continuous: 5x10 over 150
    assert pair_iou(a, b, 1)[0] == pytest.approx(66 / 176)  # devkit +1: 6x11 over 121+121-66


def test_greedy_duplicate_and_miss():
    # gt0 found twice (second is a duplicate FP), one detection on nothing, gt1 missed
    gt, det = one_image([[0, 0, 10, 10], [50, 50, 60, 60]], [0, 0],
                        [[0, 0, 10, 9, 0.9, 0], [0, 0, 9, 10, 0.8, 0], [30, 30, 40, 40, 0.7, 0]])
    r = voc_evaluate(gt, det, 1)
    np.testing.assert_array_equal(r.match.tp, [True, False, False])
    np.testing.assert_allclose(r.curves[0].recall, [0.5, 0.5, 0.5])
    np.testing.assert_allclose(r.curves[0].precision, [1, 0.5, 1 / 3])
    assert r.ap[0] == pytest.approx(0.5)  # recall 0.5 at precision 1
    assert r.ap07[0] == pytest.approx(6 / 11)  # levels 0 .. 0.5 reach precision 1


def test_score_order_not_input_order():
    # the lower-scored detection comes first in the input; the higher one must take the box
    gt, det = one_image([[0, 0, 10, 10]], [0], [[0, 0, 10, 9, 0.3, 0], [0, 0, 10, 10, 0.9, 0]])
    np.testing.assert_array_equal(voc_match(gt, det).tp, [False, True])


def test_assigned_box_is_max_iou_even_if_taken():
    # devkit: det 2 overlaps taken box A most (IoU 0.9) and free box B enough (0.6): still FP
    gt, det = one_image([[0, 0, 10, 10], [2, 0, 12, 10]], [0, 0],
                        [[0, 0, 10, 10, 0.9, 0], [0.5, 0, 10.5, 10, 0.8, 0]])
    m = voc_match(gt, det)
    np.testing.assert_array_equal(m.gt, [0, 0])
    np.testing.assert_array_equal(m.tp, [True, False])


def test_difficult_is_neither_tp_nor_fp():
    gt, det = one_image([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0],
                        [[20, 20, 30, 30, 0.9, 0], [0, 0, 10, 10, 0.5, 0]], difficult=[True, False])
    r = voc_evaluate(gt, det, 1)
    np.testing.assert_array_equal(r.match.ignored, [False, True])
    assert r.npos[0] == 1 and len(r.curves[0].tp) == 1
    assert r.ap[0] == pytest.approx(1.0)


def test_iou_threshold_is_inclusive():
    gt, det = one_image([[0, 0, 10, 10]], [0], [[0, 0, 5, 10, 0.9, 0]])  # IoU exactly 0.5
    assert voc_match(gt, det, 0.5).tp[0]
    assert not voc_match(gt, det, 0.51).tp[0]


def test_class_and_image_must_match():
    gt = GroundTruth.from_lists([np.array([[0, 0, 10, 10.]]), np.zeros((0, 4))], [[0], []])
    det = Detections.from_lists([np.array([[0, 0, 10, 10, 0.9, 1]]), np.array([[0, 0, 10, 10, 0.8, 0]])])
    r = voc_evaluate(gt, det, 2)
    assert not r.match.tp.any()
    assert r.ap[0] == 0.0 and np.isnan(r.ap[1])  # class 1 has no ground truth: left out of the mean
    assert r.map == 0.0


def test_empty_inputs():
    gt = GroundTruth.from_lists([np.array([[0, 0, 10, 10.]])], [[0]])
    r = voc_evaluate(gt, Detections.from_lists([np.zeros((0, 6))]), 1)
    assert r.ap[0] == 0.0 and r.ap07[0] == 0.0
    r = voc_evaluate(GroundTruth.from_lists([np.zeros((0, 4))], [[]]),
                     Detections.from_lists([np.zeros((0, 6))]), 1)
    assert np.isnan(r.map)


def test_voc07_recall_levels_are_the_devkits():
    # np.arange(0, 1.1, 0.1)[3] is 0.30000000000000004, so a recall of exactly 0.3 reaches only 3 levels
    assert average_precision(np.array([0.3]), np.array([1.0]), use_07_metric=True) == pytest.approx(3 / 11)
    assert average_precision(np.array([0.3]), np.array([1.0])) == pytest.approx(0.3)


def test_accepts_torch_tensors():
    gt = GroundTruth.from_lists([torch.tensor([[0, 0, 10, 10.]])], [torch.tensor([0])])
    det = Detections.from_lists([torch.tensor([[0, 0, 10, 10, 0.9, 0.]])])
    assert voc_evaluate(gt, det, 1).ap[0] == 1.0


# ----------------------------------------------------------------------------- devkit loop equivalence
def devkit_loop(gt_boxes, gt_labels, gt_diff, dets, cls, thr, offset):
    """A line-by-line transcription of the devkit's per-class loop (the behaviour being reproduced)."""
    npos = sum(int((np.asarray(lab) == cls)[~np.asarray(d, bool)].sum()) for lab, d in zip(gt_labels, gt_diff))
    items = [(d[4], i, d[:4]) for i, ds in enumerate(dets) for d in ds if d[5] == cls]
    order = sorted(range(len(items)), key=lambda k: -items[k][0])  # stable
    used = [np.zeros(len(b), bool) for b in gt_boxes]
    tp, fp = [], []
    for k in order:
        _, i, bb = items[k]
        ovmax, jmax = -np.inf, -1
        for j, (g, lab) in enumerate(zip(gt_boxes[i], gt_labels[i])):
            if lab != cls:
                continue
            iw = min(bb[2], g[2]) - max(bb[0], g[0]) + offset
            ih = min(bb[3], g[3]) - max(bb[1], g[1]) + offset
            ov = 0.0
            if iw > 0 and ih > 0:
                ua = (bb[2] - bb[0] + offset) * (bb[3] - bb[1] + offset) + (g[2] - g[0] + offset) * (g[3] - g[1] + offset) - iw * ih
                ov = iw * ih / ua
            if ov > ovmax:
                ovmax, jmax = ov, j
        if jmax >= 0 and ovmax >= thr:
            if gt_diff[i][jmax]:
                continue
            if not used[i][jmax]:
                used[i][jmax] = True
                tp.append(1); fp.append(0)
            else:
                tp.append(0); fp.append(1)
        else:
            tp.append(0); fp.append(1)
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    if npos == 0:
        return float("nan")
    return average_precision(tp / npos, tp / np.maximum(tp + fp, 1e-12))


@pytest.mark.parametrize("offset", [0, 1])
def test_matches_devkit_loop_on_random_data(offset):
    rng = np.random.default_rng(offset)
    n_img, n_cls = 30, 4
    gt_boxes, gt_labels, gt_diff, dets = [], [], [], []
    for _ in range(n_img):
        n = rng.integers(0, 6)
        xy = rng.uniform(0, 80, (n, 2)).round()
        gt_boxes.append(np.c_[xy, xy + rng.uniform(5, 30, (n, 2)).round()])
        gt_labels.append(rng.integers(0, n_cls, n))
        gt_diff.append(rng.random(n) < 0.2)
        # detections: jittered copies of the boxes (some duplicated) plus random ones, tied scores too
        src = gt_boxes[-1][rng.integers(0, max(n, 1), rng.integers(0, 8))] if n else np.zeros((0, 4))
        jit = src + rng.normal(0, 3, src.shape)
        rand = rng.uniform(0, 100, (rng.integers(0, 4), 2))
        boxes = np.r_[jit, np.c_[rand, rand + 10]]
        scores = rng.choice([0.1, 0.5, 0.5, 0.7, 0.9], len(boxes))
        labels = np.r_[gt_labels[-1][rng.integers(0, max(n, 1), len(src))] if n else [], rng.integers(0, n_cls, len(rand))]
        dets.append(np.c_[boxes, scores, labels])
    r = voc_evaluate(GroundTruth.from_lists(gt_boxes, gt_labels, gt_diff), Detections.from_lists(dets),
                     n_cls, 0.5, offset)
    expected = [devkit_loop(gt_boxes, gt_labels, gt_diff, dets, c, 0.5, offset) for c in range(n_cls)]
    np.testing.assert_allclose(r.ap, expected, rtol=0, atol=1e-12)
    assert r.match.tp.sum() > 0


# ----------------------------------------------------------------------------- shared references
def test_cartucho_sample_with_plus_one_pixel(shared):
    root = shared / "cartucho_map_sample"
    gb, gl, gd, dets, names = read_cartucho(root / "input")
    ref_map, ref_cls = cartucho_reference(root / "REFERENCE_RESULTS.txt")
    r = voc_evaluate(GroundTruth.from_lists(gb, gl, gd), Detections.from_lists(dets), len(names),
                     pixel_offset=1)
    assert round(100 * r.map, 2) == ref_map  # 31.05 in the file
    assert len(ref_cls) == 30
    for name, ap in ref_cls.items():
        assert round(100 * r.ap[names.index(name)], 2) == pytest.approx(ap, abs=1e-9), name
    # the continuous convention gives a (slightly) different number on this data
    r0 = voc_evaluate(GroundTruth.from_lists(gb, gl, gd), Detections.from_lists(dets), len(names))
    assert round(100 * r0.map, 2) != ref_map


def _rodm_lists(root):
    import xml.etree.ElementTree as ET

    names = (root / "voc.names").read_text().split()
    gb, gl, gd, dets = [], [], [], []
    for f in sorted((root / "gts" / "pascalvoc_format").glob("*.xml")):
        objs = ET.parse(f).getroot().findall("object")
        gb.append(np.array([[float(o.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
                            for o in objs]).reshape(-1, 4))
        gl.append([names.index(o.findtext("name")) for o in objs])
        gd.append([o.findtext("difficult") == "1" for o in objs])
        d = root / "dets" / "abs_xyx2y2" / (f.stem + ".txt")
        a = np.loadtxt(d, ndmin=2).reshape(-1, 6) if d.exists() else np.zeros((0, 6))
        dets.append(a[:, [2, 3, 4, 5, 1, 0]])  # "<class> <score> x1 y1 x2 y2" -> [x1 y1 x2 y2 score class]
    return gb, gl, gd, dets, names


@pytest.mark.parametrize("offset", [0, 1])
def test_voc2012_sample_all_point(shared, offset):
    root = shared / "voc2012_rodm" / "data" / "database"
    gb, gl, gd, dets, names = _rodm_lists(root)
    ref_map, ref_cls = rodm_voc_reference(shared / "voc2012_rodm" / "REFERENCE_RESULTS.txt")
    r = voc_evaluate(GroundTruth.from_lists(gb, gl, gd), Detections.from_lists(dets), 20, pixel_offset=offset)
    assert round(100 * r.map, 2) == ref_map  # 61.39; no IoU here sits on 0.5, so both conventions agree
    for name, ap in ref_cls.items():
        assert round(100 * r.ap[names.index(name)], 2) == pytest.approx(ap, abs=1e-9), name
    assert r.npos.sum() == 273 - 38  # difficult boxes are not counted


def test_padilla_test_case_1(shared):
    root = shared / "voc2012_rodm" / "tests" / "test_case_1"
    text = (shared / "voc2012_rodm" / "REFERENCE_RESULTS.txt").read_text().split("3) tests/test_case_1", 1)[1]
    ref11 = {float(t): float(v) for t, v in re.findall(r"IoU([\d.]+)=([\d.]+)", text.split("all-point AP:")[0])}
    ref_all = {float(t): float(v) for t, v in re.findall(r"IoU([\d.]+)=([\d.]+)", text.split("all-point AP:")[1])}
    gb, gl, dets = [], [], []
    for f in sorted((root / "gts").glob("*.txt")):
        g = np.loadtxt(f, usecols=(1, 2, 3, 4), ndmin=2)
        gb.append(np.c_[g[:, :2], g[:, :2] + g[:, 2:]])  # "object x y w h" -> xyxy
        gl.append([0] * len(g))
        d = np.loadtxt(root / "dets" / f.name, usecols=(1, 2, 3, 4, 5), ndmin=2)
        dets.append(np.c_[d[:, 1:3], d[:, 1:3] + d[:, 3:5], d[:, 0], np.zeros(len(d))])
    gt, det = GroundTruth.from_lists(gb, gl), Detections.from_lists(dets)
    assert len(ref11) == len(ref_all) == 4
    for thr in ref11:
        r = voc_evaluate(gt, det, 1, iou_thres=thr, pixel_offset=1)  # that tool uses the +1 convention
        assert r.ap07[0] == pytest.approx(ref11[thr], abs=1e-9)
        assert r.ap[0] == pytest.approx(ref_all[thr], abs=1e-9)
