"""evaluate(): the dict, table, files and figures; the confusion matrix; any detector callable."""

import json
from pathlib import Path

import numpy as np
import pytest

from tests.eval.refs import rodm_voc_reference
from tests.eval.tide_ref import rodm_dataset
from yolokit.eval import Detections, GroundTruth, confusion_matrix, evaluate, evaluate_model, format_table


@pytest.fixture(scope="module")
def rodm(shared):
    """voc2012_rodm and its 452 detections (tests/eval/tide_ref.py)."""
    return rodm_dataset(shared)


def test_voc_dataset_reference_and_outputs(shared, rodm, tmp_path):
    ds, dets = rodm
    ref_map, _ = rodm_voc_reference(shared / "voc2012_rodm" / "REFERENCE_RESULTS.txt")
    m = evaluate(ds, dets, save_dir=tmp_path, plots=True)
    assert round(100 * m["voc"], 2) == ref_map
    assert set(m) >= {"voc07", "voc", "coco", "per_class", "at_conf"}
    assert 0 < m["voc07"] < 1 and 0 < m["coco"]["AP"] < m["coco"]["AP50"] <= 1
    assert list(m["per_class"]) == ds.class_names
    assert sum(r["n_gt"] for r in m["per_class"].values()) == 273 - 38
    assert json.loads((tmp_path / "metrics.json").read_text()) == json.loads(json.dumps(m))
    table = (tmp_path / "metrics.txt").read_text()
    assert f"{ref_map:.2f}%" in table and "aeroplane" in table
    for name in ("confusion_matrix.png", "pr/pr_curves.png", "pr/pr_aeroplane.png", "detections.json"):
        assert (tmp_path / name).stat().st_size > 1000, name
    # the exported results JSON scores the same when read back
    again = evaluate(ds, tmp_path / "detections.json")
    assert again["voc"] == m["voc"] and again["coco"] == m["coco"]


def test_metric_selection_and_precision_recall(rodm):
    ds, dets = rodm
    m = evaluate(ds, dets, metrics=["voc"], report_conf=0.5)
    assert "coco" not in m and "voc07" not in m
    a = m["at_conf"]
    n_det = sum(int((d[:, 4] >= 0.5).sum()) for d in dets)
    assert a["tp"] + a["fp"] <= n_det  # detections on difficult boxes count as neither
    assert a["precision"] == pytest.approx(a["tp"] / (a["tp"] + a["fp"]))
    assert a["recall"] == pytest.approx(a["tp"] / (273 - 38))


def test_perfect_detections_from_any_detector_callable(rodm):
    ds, _ = rodm
    calls = []

    def detector(images):  # a detector that returns the ground truth, in dataset order
        start = sum(calls)
        calls.append(len(images))
        return [np.c_[r.boxes, np.ones(len(r.boxes)), r.labels] for r in ds.records[start:start + len(images)]]

    m = evaluate_model(detector, ds, batch_size=16, metrics=["voc", "voc07", "coco"])
    assert sum(calls) == len(ds) and max(calls) == 16
    assert m["voc"] == pytest.approx(1.0) and m["voc07"] == pytest.approx(1.0)
    assert m["coco"]["AP"] == pytest.approx(1.0)


def test_confusion_matrix_hand_case():
    gt = GroundTruth.from_lists([np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60], [70, 70, 80, 80.]])],
                                [[0, 1, 1, 0]], difficult=[[False, False, False, True]])
    det = Detections.from_lists([np.array([
        [0, 0, 10, 10, 0.9, 0],     # class 0 found as 0
        [20, 20, 30, 30, 0.8, 0],   # class 1 found as 0
        [90, 90, 99, 99, 0.7, 1],   # background called 1
        [70, 70, 80, 80, 0.9, 0],   # on a difficult box: not counted
        [0, 0, 10, 10, 0.1, 1],     # below conf
    ])])
    cm = confusion_matrix(gt, det, 2, conf=0.25)
    expected = np.array([[1, 0, 0],   # true 0: as 0
                         [1, 0, 1],   # true 1: as 0, missed once
                         [0, 1, 0]])  # background: one FP of class 1
    np.testing.assert_array_equal(cm, expected)


def test_table_and_json_without_coco():
    gt = GroundTruth.from_lists([np.array([[0, 0, 10, 10.]])], [[0]])
    m = evaluate(gt, [np.array([[0, 0, 10, 10, 0.9, 0]])], ["thing"], metrics=["voc"], pixel_offset=1)
    assert m["voc"] == 1.0
    text = format_table(m)
    assert "+1 pixel" in text and "thing" in text
    json.dumps(m)  # plain JSON types only


def test_yolo_dataset_takes_coco_results_json(shared):
    """COCO-derived YOLO txt (stems 000000000009.jpg, 80 classes) links a results JSON that uses COCO's
    integer image ids and 91 category ids: the COCO ground truth as detections scores ~1."""
    from yolokit.data import load_dataset

    ds = load_dataset(Path(__file__).resolve().parents[2] / "configs/data/coco128_yolo.yaml", "train")
    anns = json.loads((shared / "coco128_cocojson/annotations/instances_train2017.json").read_text())["annotations"]
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
               for a in anns if not a["iscrowd"]]
    m = evaluate(ds, results, metrics=["voc"])
    assert m["skipped"] == {}  # every image and category id found its place
    assert m["detections"] == len(results)
    assert m["voc"] > 0.97  # YOLO txt rounds the boxes; nothing else differs


def test_keyword_names_are_the_settings_names(rodm):
    # report_conf / match_iou / coco_max_dets, as the settings and flags; the old names (conf, iou_thres,
    # max_dets) read like the NMS's and are gone at 0.1.0, like any unknown keyword
    ds, dets = rodm
    new = evaluate(ds, dets, metrics=["voc"], report_conf=0.5, match_iou=0.6)
    assert new["at_conf"]["conf"] == 0.5 and new["protocol"]["iou"] == 0.6
    for old in ("conf", "iou_thres", "max_dets", "nonsense"):
        with pytest.raises(TypeError, match=old):
            evaluate(ds, dets, **{old: 1})
