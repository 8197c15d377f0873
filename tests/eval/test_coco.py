"""COCO metrics: pycocotools' own numbers, id mapping, results JSON, iscrowd, optional fast backend."""

import contextlib
import io
import json

import numpy as np
import pytest

from tests.eval.refs import rodm_coco_reference
from yolokit.errors import DataError
from yolokit.eval import (COCO80_TO_91, STAT_NAMES, Detections, GroundTruth, coco_evaluate, detections_from_coco,
                          detections_to_coco, evaluate, ground_truth_to_coco)


def direct_pycocotools(gt_path, results):
    """pycocotools called the documented way, as a user would."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate(); ev.accumulate(); ev.summarize()
    return dict(zip(STAT_NAMES, ev.stats.tolist()))


@pytest.fixture(scope="module")
def coco_eval_case(shared):
    root = shared / "voc2012_rodm" / "tests" / "test_coco_eval"
    return root / "gts" / "sampled_gts_bbox_area.json", json.loads((root / "cocoapi_results.json").read_text())


@pytest.mark.parametrize("backend", ["pycocotools"])
def test_reference_stats(shared, coco_eval_case, backend):
    gt_path, results = coco_eval_case
    ref = rodm_coco_reference(shared / "voc2012_rodm" / "REFERENCE_RESULTS.txt", "1)")
    assert set(ref) == set(STAT_NAMES)
    stats = coco_evaluate(gt_path, results, backend=backend).stats
    for k in STAT_NAMES:
        assert round(stats[k], 6) == ref[k], k  # AP 0.503647, AP50 0.696973, ...
    assert stats == direct_pycocotools(gt_path, results)


def test_dataset_path_equals_direct_pycocotools(coco_eval_case):
    from yolokit.data import load_dataset

    gt_path, results = coco_eval_case
    ds = load_dataset({"format": "coco", "root": str(gt_path.parents[1]),
                       "splits": {"val": {"images": ".", "annotations": str(gt_path)}}}, "val", check_images=False)
    m = evaluate(ds, results, metrics=["coco"])  # results use COCO's 91 ids, the dataset 80 contiguous labels
    assert m["coco"] == direct_pycocotools(gt_path, results)
    assert m["skipped"] == {}
    assert m["detections"] == len(results)
    # per-class table: mean of the per-class COCO AP over classes with ground truth is the overall AP
    aps = [r["coco_AP"] for r in m["per_class"].values() if r["coco_AP"] is not None]
    assert np.mean(aps) == pytest.approx(m["coco"]["AP"], abs=1e-12)


def test_voc_sample_coco_protocol(shared):
    from yolokit.data import load_dataset

    root = shared / "voc2012_rodm" / "data" / "database"
    ds = load_dataset({"format": "coco", "root": str(root),
                       "splits": {"val": {"images": "images",
                                          "annotations": "gts/coco_format_v1/instances_default.json"}}}, "val")
    ref = rodm_coco_reference(shared / "voc2012_rodm" / "REFERENCE_RESULTS.txt", "2b")
    # detections as a COCO dict with its own 0-based image/category ids: linked by file and class name
    m = evaluate(ds, root / "dets" / "coco_format" / "coco_dets.json")
    for k in STAT_NAMES:
        assert round(m["coco"][k], 6) == ref[k], k  # AP 0.346958, AP50 0.610030
    assert m["detections"] == 452


def test_coco80_to_91_matches_the_coco_files(shared):
    cats = json.loads((shared / "coco128_cocojson" / "annotations" / "instances_train2017.json").read_text())["categories"]
    assert list(COCO80_TO_91) == sorted(c["id"] for c in cats)  # coco.names order is the id order


def test_results_json_round_trip():
    gt = GroundTruth.from_lists([np.array([[0, 0, 10, 20.]]), np.array([[5, 5, 15, 15.]])], [[0], [1]],
                                image_ids=["a", "b"], sizes=[(50, 50), (50, 50)])
    det = Detections.from_lists([np.array([[1, 2, 11, 22, 0.9, 1]]), np.array([[5, 5, 15, 15, 0.8, 0]])])
    res = detections_to_coco(det, [7, 9], [3, 5])
    assert res[0] == {"image_id": 7, "category_id": 5, "bbox": [1.0, 2.0, 10.0, 20.0], "score": 0.9}
    back, skipped = detections_from_coco(res, GroundTruth.from_lists([np.zeros((0, 4))] * 2, [[], []], image_ids=[7, 9]),
                                         ["x", "y"], [3, 5])
    np.testing.assert_allclose(back.boxes, det.boxes)
    np.testing.assert_array_equal(back.labels, det.labels)
    np.testing.assert_array_equal(back.image, det.image)
    assert skipped == {"unknown_image": 0, "unknown_category": 0}
    # string image ids (VOC / YOLO stems) become 1..N in the COCO view
    coco = ground_truth_to_coco(gt, [3, 5], ["x", "y"])
    assert [i["id"] for i in coco["images"]] == [1, 2]
    assert min(a["id"] for a in coco["annotations"]) == 1  # pycocotools reads id 0 as "unmatched"


def test_iscrowd_region_absorbs_detections():
    boxes = [np.array([[0, 0, 20, 20], [40, 40, 90, 90.]])]
    det = Detections.from_lists([np.array([[0, 0, 20, 20, 0.9, 0], [45, 45, 60, 60, 0.95, 0]])])
    res = detections_to_coco(det, [0], [1])
    crowd = GroundTruth.from_lists(boxes, [[0, 0]], iscrowd=[[False, True]], sizes=[(100, 100)])
    plain = GroundTruth.from_lists(boxes, [[0, 0]], sizes=[(100, 100)])
    assert coco_evaluate(ground_truth_to_coco(crowd, [1], ["a"]), res).stats["AP50"] == pytest.approx(1.0)
    assert coco_evaluate(ground_truth_to_coco(plain, [1], ["a"]), res).stats["AP50"] < 0.9


def test_empty_results_score_zero():
    gt = GroundTruth.from_lists([np.array([[0, 0, 20, 20.]])], [[0]], sizes=[(100, 100)])
    stats = coco_evaluate(ground_truth_to_coco(gt, [1], ["a"]), []).stats
    assert stats["AP"] == 0.0 and stats["AR100"] == 0.0


def test_unknown_image_ids_are_an_error(coco_eval_case):
    gt_path, results = coco_eval_case
    with pytest.raises(DataError, match="image ids"):
        coco_evaluate(gt_path, [dict(results[0], image_id=-5)])


def test_unknown_category_ids_are_an_error():
    gt = GroundTruth.from_lists([np.zeros((0, 4))], [[]])
    with pytest.raises(DataError, match="category ids"):
        detections_from_coco([{"image_id": 0, "category_id": 999, "bbox": [0, 0, 1, 1], "score": 1}], gt, ["a", "b"])


def test_faster_backend_gives_the_same_numbers(coco_eval_case):
    pytest.importorskip("faster_coco_eval")
    gt_path, results = coco_eval_case
    a = coco_evaluate(gt_path, results, backend="pycocotools").stats
    b = coco_evaluate(gt_path, results, backend="faster").stats
    for k in STAT_NAMES:
        assert b[k] == pytest.approx(a[k], abs=1e-12), k


def test_category_id_space_inference():
    from yolokit.eval.inputs import category_ids_for, infer_category_ids

    three, eighty = ["a", "b", "c"], ["person"] + [f"c{i}" for i in range(79)]
    assert infer_category_ids({0, 2}, three) == [0, 1, 2]
    assert infer_category_ids({1, 3}, three) == [1, 2, 3]
    assert infer_category_ids({1, 90}, eighty) == list(COCO80_TO_91)
    assert infer_category_ids({1, 12}, eighty) == list(range(1, 81))  # 12 is no COCO id: 1-based
    with pytest.raises(DataError, match="category ids"):
        infer_category_ids({0, 3}, three)
    assert category_ids_for("zero", 3) == [0, 1, 2]
    with pytest.raises(DataError, match="80 classes"):
        category_ids_for("coco91", 3)


def test_explicit_category_ids_override_the_guess():
    gt = GroundTruth.from_lists([np.array([[0, 0, 10, 10.], [20, 20, 30, 30]])], [[1, 2]], sizes=[(50, 50)])
    res = [{"image_id": 0, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
           {"image_id": 0, "category_id": 2, "bbox": [20, 20, 10, 10], "score": 0.9}]
    # guessed 1-based: ids 1, 2 -> classes 0, 1, which are the wrong classes here
    assert evaluate(gt, res, ["a", "b", "c"], metrics=["voc"])["voc"] == 0.0
    m = evaluate(gt, res, ["a", "b", "c"], metrics=["voc", "coco"], category_ids="zero")
    assert m["voc"] == 1.0 and m["coco"]["AP"] == pytest.approx(1.0)
