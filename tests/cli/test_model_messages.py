"""A file of the wrong kind given as --model says what it is and what to pass; eval says where each setting
came from."""

from types import SimpleNamespace

import pytest

from yolokit.cli import main
from yolokit.cli.eval import settings_origin_line


def _err(capsys, argv) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_weights_as_model_names_its_cfg(tmp_path, capsys):
    (tmp_path / "yolov3-tiny.cfg").write_text("[net]\n")
    (tmp_path / "yolov3-tiny.weights").write_bytes(b"\0" * 20)
    (tmp_path / "x.jpg").write_bytes(b"")
    for cmd in (["detect", str(tmp_path / "x.jpg")], ["eval", "--data", str(tmp_path / "missing.yaml")]):
        err = _err(capsys, [*cmd, "--model", str(tmp_path / "yolov3-tiny.weights")])
        assert "a Darknet .weights file holds the weights only" in err
        assert f"--model {tmp_path / 'yolov3-tiny.cfg'} --weights {tmp_path / 'yolov3-tiny.weights'}" in err


def test_results_csv_as_model_points_at_best_pt(tmp_path, capsys):
    (tmp_path / "results.csv").write_text("epoch\n")
    (tmp_path / "best.pt").write_bytes(b"")
    err = _err(capsys, ["detect", "photo.jpg", "--model", str(tmp_path / "results.csv")])
    assert "a .csv file is not a model" in err and f"this run's model is {tmp_path / 'best.pt'}" in err


@pytest.mark.parametrize("flags, saved, expected", [
    ({"imgsz": 416, "conf": 0.3}, {"imgsz": 320, "conf": 0.005, "iou": 0.6},
     "predicting at imgsz 416 (--imgsz), conf 0.3 (--conf), iou 0.6 (the model's saved setting), "
     "max_det 300 (eval default)"),
    ({}, {}, "predicting at imgsz 416 (the cfg's [net] size), conf 0.001 (eval default), iou 0.6 (eval default), "
             "max_det 300 (eval default)"),
])
def test_eval_says_which_setting_came_from_where(flags, saved, expected):
    predictor = SimpleNamespace(imgsz=flags.get("imgsz", saved.get("imgsz", 416)), conf=flags.get("conf", saved.get(
        "conf", 0.001)), iou=saved.get("iou", 0.6), max_det=300)
    settings = SimpleNamespace(imgsz=flags.get("imgsz"), conf=flags.get("conf"), iou=None, max_det=None)
    assert settings_origin_line(predictor, SimpleNamespace(settings=saved), settings) == expected
