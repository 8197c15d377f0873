"""Outputs read as words, not internals: skipped records, COCO's -1, empty analysis panels."""

import pytest

from yolokit.eval.evaluator import skipped_text


def test_skipped_counts_are_a_sentence():
    assert skipped_text({"unknown_image": 3277}) == "3,277 detections not scored (for images outside this split)"
    assert skipped_text({"unknown_image": 3, "unknown_category": 2}) == (
        "5 detections not scored (3 for images outside this split; 2 of classes this dataset does not have)")


def _large_only():
    gt = {"images": [{"id": i, "width": 400, "height": 400} for i in range(4)],
          "categories": [{"id": 1, "name": "raccoon"}],
          "annotations": [{"id": i + 1, "image_id": i, "category_id": 1, "bbox": [50, 50, 200, 150], "area": 30000,
                           "iscrowd": 0} for i in range(4)]}
    res = [{"image_id": i, "category_id": 1, "bbox": [55 + 10 * i, 50, 200, 150], "score": 0.9 - 0.1 * i}
           for i in range(4)]
    return gt, res


def test_analysis_panels_without_objects_say_na(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from yolokit.eval import analysis

    gt, res = _large_only()
    result = analysis.analyze(gt, res, list(range(4)))
    assert result["n_gt_area"].tolist() == [[4, 0, 0, 4]]  # all, small, medium, large
    empty = []
    monkeypatch.setattr(analysis, "_draw_empty", lambda ax, title, text: empty.append(text))
    analysis.plot_bands(result, tmp_path, per_class=False)
    assert empty == ["n/a: no small objects", "n/a: no medium objects"]


def test_coco_minus_one_prints_na():
    from yolokit.eval import format_table

    coco = dict.fromkeys(("AP", "AP50", "AP75", "APm", "APl", "AR1", "AR10", "AR100", "ARm", "ARl"), 0.5)
    coco.update(APs=-1.0, ARs=-1.0)  # pycocotools' value when the data has no small objects
    metrics = {"per_class": {}, "coco": coco, "images": 4, "objects": 4, "detections": 4,
               "protocol": {"pixel_offset": 0, "iou": 0.5, "coco_backend": "pycocotools", "max_dets": 100},
               "at_conf": {"conf": 0.25, "precision": 1.0, "recall": 1.0, "f1": 1.0, "tp": 4, "fp": 0}}
    text = format_table(metrics)
    assert "APs n/a" in text and "ARs n/a" in text and "-1.0000" not in text and "APm 0.5000" in text
