"""TIDE breakdown: tidecv 1.0.1's numbers on real detections, hand-made cases for each error type."""

import numpy as np
import pytest

from tests.eval.tide_ref import coco128_dataset, rodm_dataset, tidecv_breakdown, yolov3_tiny_detections
from yolokit.eval import Detections, GroundTruth, evaluate
from yolokit.eval.inputs import ground_truth_from
from yolokit.eval.tide import MAIN_ERRORS, SPECIAL_ERRORS, tide, tide_map


def assert_same_as_tidecv(ours, ref, tol=1e-6):
    assert ours.ap == pytest.approx(ref["ap"], abs=tol)
    for k in MAIN_ERRORS:
        assert ours.main[k] == pytest.approx(ref["main"][k], abs=tol), k
    for k in SPECIAL_ERRORS:
        assert ours.special[k] == pytest.approx(ref["special"][k], abs=tol), k
    for k in ("Cls", "Loc", "Both", "Dupe", "Bkg", "Miss"):
        assert ours.counts[k] == ref["counts"][k], k


def test_rodm_detections_equal_tidecv(shared):
    pytest.importorskip("tidecv", reason="tidecv is the test reference: pip install tidecv==1.0.1 --no-deps")
    ds, dets = rodm_dataset(shared)
    gt, det = ground_truth_from(ds), Detections.from_lists(dets)
    ours = tide(gt, det, num_classes=len(ds.class_names))
    ref = tidecv_breakdown(gt, det, ds.class_names)
    assert_same_as_tidecv(ours, ref)
    # every error type occurs on this data, so each branch above was compared
    assert all(ours.counts[k] > 0 for k in MAIN_ERRORS)
    # evaluate(tide=True) reports the same, rounded as tidecv prints (issue: within 0.05)
    m = evaluate(ds, dets, metrics=["voc"], tide=True)
    for k in MAIN_ERRORS:
        assert abs(m["tide"]["main"][k] - ref["main"][k]) <= 0.05
    for k in SPECIAL_ERRORS:
        assert abs(m["tide"]["special"][k] - ref["special"][k]) <= 0.05


@pytest.fixture(scope="module")
def coco128_yolov3_tiny(shared):
    ds = coco128_dataset(shared)
    return ds, yolov3_tiny_detections(shared, ds)


@pytest.mark.slow
def test_pretrained_yolov3_tiny_on_coco128_equals_tidecv(coco128_yolov3_tiny):
    pytest.importorskip("tidecv", reason="tidecv is the test reference: pip install tidecv==1.0.1 --no-deps")
    ds, dets = coco128_yolov3_tiny
    gt, det = ground_truth_from(ds), Detections.from_lists(dets)
    assert gt.iscrowd.sum() == 10 and (det.image == 0).sum() > 100  # crowd regions and max_dets both matter
    ours = tide(gt, det, num_classes=80)
    ref = tidecv_breakdown(gt, det, ds.class_names)
    assert_same_as_tidecv(ours, ref)
    assert ours.main["Loc"] > ours.main["Cls"] > 0  # tiny's boxes, not its classes, cost the most


def test_synthetic_ties_and_difficult_equal_tidecv():
    """Rounded scores (ties across TP and FP), difficult boxes, images without ground truth."""
    pytest.importorskip("tidecv", reason="tidecv is the test reference: pip install tidecv==1.0.1 --no-deps")
    from benchmarks.eval import synthetic_workload

    gt, det = synthetic_workload(n_images=40, dets_per_image=30, n_classes=5, seed=3)
    det.scores = np.round(det.scores, 1)  # many ties
    gt.image[gt.image == 7] = 8  # image 7 has no ground truth: all its detections are Bkg
    ours = tide(gt, det, num_classes=5)
    assert_same_as_tidecv(ours, tidecv_breakdown(gt, det, [f"c{i}" for i in range(5)]))


def _one_image(gt_boxes, gt_labels, dets, difficult=None):
    gt = GroundTruth.from_lists([np.array(gt_boxes, float)], [gt_labels],
                                difficult=None if difficult is None else [difficult])
    return gt, Detections.from_lists([np.array(dets, float).reshape(-1, 6)])


def test_each_error_type_by_hand():
    # box 0: class 0 at (0,0,10,10); box 1: class 1 at (20,0,30,10); box 2: class 0 at (50,50,60,60), missed
    gt, det = _one_image([[0, 0, 10, 10], [20, 0, 30, 10], [50, 50, 60, 60]], [0, 1, 0], [
        [0, 0, 10, 10, .9, 0],    # TP on box 0
        [0, 0, 10, 10, .8, 0],    # Dupe of box 0
        [20, 0, 30, 10, .7, 0],   # Cls: box 1 is class 1
        [0, 0, 10, 4, .6, 0],     # Loc: IoU 0.4 with box 0 (but box 0 is taken: fix suppresses it)
        [100, 100, 110, 110, .5, 0],  # Bkg: no overlap at all
        [20, 0, 24, 10, .4, 0],   # Both: IoU 0.4 with box 1 (other class), 0 with its own class's boxes
    ])
    r = tide(gt, det, num_classes=2)
    assert [("TP", "FP")[s] for s in r.status] == ["TP"] + ["FP"] * 5
    assert list(r.error) == [-1, 3, 0, 1, 4, 2]  # -, Dupe, Cls, Loc, Bkg, Both
    assert list(r.target[:4]) == [0, 0, 1, 0] and r.target[4] == -1
    assert list(r.gt_matched) == [True, False, False]
    assert list(r.gt_missed) == [False, False, True]  # box 1 is "usable" by the Cls error, not missed
    assert r.counts == {"Cls": 1, "Loc": 1, "Both": 1, "Dupe": 1, "Bkg": 1, "Miss": 1, "TP": 1, "FP": 5}
    # fixing the Cls error makes it class 1's true positive: class 1 goes from AP 0 to 100
    assert r.main["Cls"] > 0 and r.main["Miss"] > 0 and r.special["FalseNeg"] > 0


def test_difficult_box_is_an_ignore_region_and_loc_fix_is_one_per_box():
    gt, det = _one_image([[0, 0, 10, 10], [40, 40, 60, 60]], [0, 0], [
        [41, 41, 59, 59, .9, 0],  # inside the difficult box: ignored, counted nowhere
        [0, 0, 10, 3, .8, 0],     # Loc on box 0 (IoU 0.3), the best one: its fix is a TP
        [0, 0, 10, 2.5, .7, 0],   # Loc on box 0 again: its fix removes it
    ], difficult=[False, True])
    r = tide(gt, det, num_classes=1)
    assert [("TP", "FP", "ignored")[s] for s in r.status] == ["ignored", "FP", "FP"]
    assert r.ap == 0 and r.counts["Miss"] == 0 and r.counts["Loc"] == 2
    assert r.main["Loc"] == pytest.approx(100.0)  # one fixed TP at the top, the other Loc removed
    assert r.gt_ignored.tolist() == [False, True]


def test_tide_map_is_coco_101_point():
    # 2 boxes; TP, FP, TP: precision envelope 1 up to recall .5, 2/3 up to 1
    ap = tide_map(np.array([0, 0, 0]), np.array([.9, .8, .7]), np.array([True, False, True]), np.arange(3),
                  np.array([2]))
    assert ap == pytest.approx(100 * (51 * 1 + 50 * 2 / 3) / 101)
    # a class with detections but no ground truth enters the mean at 0
    ap2 = tide_map(np.array([0, 1]), np.array([.9, .9]), np.array([True, False]), np.arange(2), np.array([1, 0]))
    assert ap2 == pytest.approx(50.0)


def test_no_detections_all_missed():
    gt, det = _one_image([[0, 0, 10, 10]], [0], np.zeros((0, 6)))
    r = tide(gt, det, num_classes=1)
    assert r.ap == 0 and r.counts["Miss"] == 1 and r.main["Miss"] == 0  # fixing leaves no class: no gain


@pytest.mark.parametrize("case", ["no_boxes", "only_difficult"])
def test_edge_cases_equal_tidecv(case):
    """Images without (counted) ground truth next to one ordinary image; on their own tidecv divides by zero
    when a fix leaves no class to average, where yolokit reports 0."""
    pytest.importorskip("tidecv", reason="tidecv is the test reference: pip install tidecv==1.0.1 --no-deps")
    box, tp = np.array([[0, 0, 10, 10.]]), np.array([[0, 0, 10, 10, .95, 0]])
    if case == "no_boxes":  # images without ground truth: every detection is Bkg
        gt = GroundTruth.from_lists([np.zeros((0, 4)), np.zeros((0, 4)), box], [[], [], [0]])
        det = Detections.from_lists([np.zeros((0, 6)), np.array([[0, 0, 5, 5, .9, 1]]), tp])
    else:  # a difficult box is an ignore region: the detection on it is ignored, the other class's one is Bkg
        gt = GroundTruth.from_lists([box, box], [[0], [0]], difficult=[[True], [False]])
        det = Detections.from_lists([np.array([[0, 0, 10, 10, .9, 0], [0, 0, 10, 10, .8, 1]]), tp])
    ours = tide(gt, det, num_classes=2)
    assert_same_as_tidecv(ours, tidecv_breakdown(gt, det, ["a", "b"]))
    assert ours.counts["Bkg"] == (1 if case == "no_boxes" else 2) and ours.counts["TP"] == 1
    assert list(ours.status[:2]) == ([1, 0] if case == "no_boxes" else [2, 1])  # FP+TP / ignored+FP


def test_nothing_to_average_is_zero():
    gt = GroundTruth.from_lists([np.zeros((0, 4))], [[]])
    r = tide(gt, Detections.from_lists([np.array([[0, 0, 5, 5, .9, 1]])]), num_classes=2)
    assert r.ap == 0 and r.main["Bkg"] == 0 and r.counts["Bkg"] == 1  # tidecv: ZeroDivisionError
