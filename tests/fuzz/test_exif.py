"""EXIF orientation: every door decodes stored pixels, so the same model gives the same numbers through detect
(OpenCV BGR frames) and eval (dataset RGB samples) on photos whose EXIF tag asks for a rotation."""

from __future__ import annotations

import json

import numpy as np

from tests.fuzz.conftest import SHARED, TINY, exif_rotated_jpeg, run_cli

VAL = SHARED / "coco128_yolo" / "object_detection"
IMAGES = SHARED / "coco128_yolo" / "images" / "val2017"
STEMS = ("000000000139", "000000000285", "000000000632", "000000000724")


def rotated_coco_subset(root):
    """Four COCO val images re-saved with EXIF orientations 6, 8, 3 and 6 (labels unchanged: they refer to the
    stored grid), as a YOLO-txt dataset."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for stem, orientation in zip(STEMS, (6, 8, 3, 6)):
        exif_rotated_jpeg(IMAGES / f"{stem}.jpg", root / "images" / f"{stem}.jpg", orientation)
        (root / "labels" / f"{stem}.txt").write_bytes((VAL / "labels" / "val2017" / f"{stem}.txt").read_bytes())
    yaml = root / "data.yaml"
    yaml.write_text(json.dumps({"format": "yolo", "root": ".", "names": str(VAL / "config.yaml"),
                                "splits": {"val": {"images": "images", "labels": "labels"}}}))
    return yaml


def test_readers_ignore_exif_orientation(tmp_path, shared):
    import cv2

    from yolokit.apps.sources import open_source
    from yolokit.data.images import read_image, read_image_bgr

    src = IMAGES / f"{STEMS[0]}.jpg"
    exif_rotated_jpeg(src, tmp_path / "r.jpg", 6)
    stored = read_image(tmp_path / "r.jpg")
    h, w = stored.shape[:2]
    assert cv2.imread(str(tmp_path / "r.jpg")).shape[:2] == (w, h)  # what detect used to see: rotated
    np.testing.assert_array_equal(read_image_bgr(tmp_path / "r.jpg"), stored[:, :, ::-1])
    frame = next(iter(open_source(str(tmp_path / "r.jpg"))))
    np.testing.assert_array_equal(frame.image, stored[:, :, ::-1])


def test_detect_json_scores_like_eval_model_on_exif_rotated_photos(tmp_path, shared):
    yaml = rotated_coco_subset(tmp_path / "ds")
    model = ["--model", TINY / "yolov3-tiny.cfg", "--weights", TINY / "yolov3-tiny.weights", "--imgsz", "320",
             "--conf", "0.1", "--iou", "0.45"]
    code, out, err = run_cli(["detect", tmp_path / "ds" / "images", *model, "--save-json", "--no-save",
                              "--out", tmp_path / "det", "--no-progress"])
    assert code == 0, err
    dets = json.loads((tmp_path / "det" / "images.json").read_text())
    assert len(dets) >= 4  # a working model on these photos, not an empty file
    metrics = ["--metrics", "voc,coco", "--json"]
    code, via_pred, err = run_cli(["eval", "--data", yaml, "--pred", tmp_path / "det" / "images.json", *metrics])
    assert code == 0, err
    code, via_model, err = run_cli(["eval", "--data", yaml, *model, *metrics])
    assert code == 0, err
    a, b = json.loads(via_pred), json.loads(via_model)
    assert a["detections"] == b["detections"] == len(dets)
    assert a["voc"] == b["voc"] and a["coco"] == b["coco"] and a["voc"] > 0.1
