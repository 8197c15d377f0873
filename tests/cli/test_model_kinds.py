"""Every model kind yolokit loads satisfies one detector contract (yolokit.models.base.Detector), so every command
that takes --model runs on every kind: a Darknet cfg + .weights, a checkpoint of a Darknet model, a checkpoint of a
torchvision-backbone model (tv:), and an exported ONNX file. Before the contract, `detect` on a tv: checkpoint
ended in AttributeError ('TvYolo' object has no attribute 'optimize_for_inference')."""

import json

import numpy as np
import pytest

import yolokit
from yolokit.cli import main
from yolokit.models import save_checkpoint
from yolokit.models.base import Detector, StagedPredictor
from yolokit.models.tv import build_tv_detector

KINDS = ("darknet", "darknet_pt", "tv_pt", "onnx")
IMGSZ = 128


@pytest.fixture(scope="module")
def models(shared, tmp_path_factory):
    """{kind: [--model/--weights argv]} for each kind, all 1-class (raccoon) except the Darknet COCO model."""
    pytest.importorskip("onnxruntime")
    out = tmp_path_factory.mktemp("kinds")
    tiny = shared / "yolov3_tiny_darknet"
    cfg, weights = str(tiny / "yolov3-tiny.cfg"), str(tiny / "yolov3-tiny.weights")
    darknet = yolokit.load(cfg, weights)
    save_checkpoint(darknet, out / "darknet.pt")
    tv = build_tv_detector("mobilenet_v3_small", 1)
    tv.class_names = ["raccoon"]
    save_checkpoint(tv, out / "tv.pt")
    # without --out the file goes beside the checkpoint (runs/x/best.pt -> runs/x/best.onnx), not into ./
    assert main(["export", "--model", str(out / "darknet.pt"), "--imgsz", str(IMGSZ)]) == 0
    assert (out / "darknet.onnx").is_file()
    return {"darknet": ["--model", cfg, "--weights", weights], "darknet_pt": ["--model", str(out / "darknet.pt")],
            "tv_pt": ["--model", str(out / "tv.pt")], "onnx": ["--model", str(out / "darknet.onnx")]}


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_a_detector(models, kind):
    argv = models[kind]
    model = yolokit.load(argv[1], weights=argv[3] if len(argv) > 2 else None)
    fast = model.optimize_for_inference()
    for m in (model, fast):
        assert isinstance(m, Detector)
        assert m.num_classes in (1, 80) and len(m.heads) >= 1 and isinstance(m.settings, dict)
    image = np.zeros((96, 160, 3), np.uint8)
    dets = fast.predict([image], imgsz=IMGSZ, conf=0.001)
    assert len(dets) == 1 and dets[0].shape[1] == 6  # an empty image may give [0, 6]: never None


@pytest.mark.parametrize("kind", KINDS)
def test_detect_and_eval_run_on_every_kind(models, kind, shared, tmp_path, capsys):
    images = sorted((shared / "raccoon" / "images").glob("*.jpg"))[:2]
    out = tmp_path / "det"
    code = main(["detect", *map(str, images), *models[kind], "--imgsz", str(IMGSZ), "--out", str(out),
                 "--save-json", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    saved = [p for p in out.rglob("*") if p.suffix.lower() in (".jpg", ".png")]
    assert len(saved) == 2
    results = json.loads(next(out.rglob("*.json")).read_text())
    assert isinstance(results, list)

    code = main(["eval", "--data", "configs/data/raccoon.yaml", "--split", "val", *models[kind],
                 "--imgsz", str(IMGSZ), "--out", str(tmp_path / "eval"), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err


@pytest.mark.parametrize("kind", KINDS)
def test_track_runs_on_every_kind(models, kind, shared, tmp_path, capsys):
    video = shared / "video_bgslibrary" / "dataset" / "video02.avi"
    code = main(["track", str(video), *models[kind], "--imgsz", str(IMGSZ), "--max-frames", "3",
                 "--out", str(tmp_path / "track"), "--no-progress"])
    assert code == 0, capsys.readouterr().err


def test_the_predictors_share_the_staged_protocol():
    from yolokit.hog.predict import HogPredictor
    from yolokit.models.predict import Predictor

    assert isinstance(Predictor(build_tv_detector("mobilenet_v3_small", 1)), StagedPredictor)
    for cls in (Predictor, HogPredictor):  # the video pipeline runs both through these stages
        for stage in ("preprocess", "infer", "postprocess", "__call__"):
            assert callable(getattr(cls, stage, None)), (cls.__name__, stage)
