"""Exported ONNX models run in yolokit (``yolokit.load("x.onnx")``) with the torch model's detections."""

from pathlib import Path

import cv2
import pytest
import torch

import yolokit
from yolokit.errors import ConfigError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

PHOTOS = ("dog.jpg", "horses.jpg", "person.jpg")


@pytest.fixture(scope="module")
def images(shared):
    folder = shared / "yolo_fastest_darknet" / "data"
    return [cv2.imread(str(folder / n))[..., ::-1].copy() for n in PHOTOS]  # RGB, as yolokit's reader


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory) -> Path:
    from yolokit.models.onnx import export_onnx

    return export_onnx(tiny, tmp_path_factory.mktemp("onnx") / "tiny320.onnx", imgsz=320)


def agree(ref, dets, min_iou=0.99, max_score_diff=0.01):
    """Same count and classes per image, each box IoU >= min_iou with its match, scores within max_score_diff."""
    from yolokit.ops.boxes import box_iou

    for a, b in zip(ref, dets, strict=True):
        assert len(a) == len(b) > 0
        best, j = box_iou(a[:, :4], b[:, :4]).max(1)
        assert (a[:, 5] == b[j, 5]).all()
        assert best.min() >= min_iou
        assert (a[:, 4] - b[j, 4]).abs().max() <= max_score_diff


def test_onnx_model_has_the_model_contract(tiny, exported):
    model = yolokit.load(exported)
    assert model.input_size == (320, 320) and model.settings["imgsz"] == 320
    assert model.class_names == tiny.class_names and model.class_names[0] == "person"
    assert [(h.kind, h.layer, h.stride, h.anchors) for h in model.heads] == \
        [(h.kind, h.layer, h.stride, h.anchors) for h in tiny.heads]
    x = torch.rand(2, 3, 320, 320)
    with torch.no_grad():
        ref = tiny(x)
    got = model(x)
    assert got.dtype == torch.float32 and got.shape == ref.shape
    torch.testing.assert_close(got[..., 4:], ref[..., 4:], atol=1e-4, rtol=0)
    assert model.optimize_for_inference() is model and not model.training


def test_onnx_model_gives_the_torch_detections_through_the_one_predictor(tiny, exported, images):
    from yolokit.models.predict import Predictor

    ref = Predictor(tiny, 320)(images)
    agree(ref, Predictor(yolokit.load(exported))(images))      # imgsz from the file's settings
    agree(ref, yolokit.load(exported).predict(images, imgsz=320))


def test_onnx_model_refuses_other_sizes_and_devices_and_nms_graphs(tiny, exported, tmp_path):
    from yolokit.models.onnx import export_onnx

    model = yolokit.load(exported)
    with pytest.raises(ConfigError, match="exported for 320x320.*--imgsz 416"):
        model(torch.rand(1, 3, 416, 416))
    with pytest.raises(ConfigError, match="CPU"):
        yolokit.load(exported, device="cuda")
    with pytest.raises(ConfigError, match="weights"):
        yolokit.load(exported, weights="x.weights")
    with pytest.raises(ConfigError, match="--nms"):
        yolokit.load(export_onnx(tiny, tmp_path / "nms.onnx", imgsz=320, nms=True))


def test_detect_cli_runs_an_onnx_model(exported, shared, tmp_path):
    from yolokit.cli import main

    photo = shared / "yolo_fastest_darknet" / "data" / "dog.jpg"
    code = main(["detect", str(photo), "--model", str(exported), "--imgsz", "320", "--save-json",
                 "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    import json

    dets = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert {"dog", "bicycle", "car"} <= {d["category_name"] for d in dets}


def test_eval_cli_gives_the_torch_figures_for_an_onnx_model(exported, shared, tmp_path, capsys):
    import json

    from yolokit.cli import main

    # 16 coco128 val2017 images with their labels (links, built at test time).
    src = shared / "coco128_yolo"
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for image in sorted((src / "images" / "val2017").glob("*.jpg"))[:16]:
        (tmp_path / "images" / image.name).symlink_to(image)
        label = src / "object_detection" / "labels" / "val2017" / f"{image.stem}.txt"
        (tmp_path / "labels" / label.name).symlink_to(label)
    tiny = shared / "yolov3_tiny_darknet"
    data = ["eval", "--format", "yolo", "--images", str(tmp_path / "images"), "--annotations",
            str(tmp_path / "labels"), "--names", str(tiny / "coco.names"), "--imgsz", "320", "--metrics", "voc",
            "--json"]
    results = []
    for model in (["--model", str(tiny / "yolov3-tiny.cfg"), "--weights", str(tiny / "yolov3-tiny.weights")],
                  ["--model", str(exported)]):
        assert main(data + model) == 0
        results.append(json.loads(capsys.readouterr().out))
    torch_voc, onnx_voc = results[0]["voc"], results[1]["voc"]
    assert torch_voc > 0.2 and abs(torch_voc - onnx_voc) < 0.005
