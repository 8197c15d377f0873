"""Every bad command-line value is one line naming the flag and exit status 2, never a traceback.

Settings are validated where each command builds its typed settings (yolokit.settings, TrainConfig), before
any file is opened, so the model and data paths below need not exist: a test that passed because a file was
missing would be passing for the wrong reason, so each test also checks the message names the flag.
"""

import argparse

import pytest
import torch

from yolokit.cli import main
from yolokit.errors import ConfigError

DETECT = ["detect", "nope.jpg", "--model", "nope.cfg", "--weights", "nope.weights"]
EVAL = ["eval", "--data", "nope.yaml", "--pred", "nope.json"]
TRAIN = ["train", "--model", "nope.cfg", "--data", "nope.yaml"]
EXPORT = ["export", "--model", "nope.cfg", "--weights", "nope.weights"]
NO_CUDA = "cuda" if not torch.cuda.is_available() else f"cuda:{torch.cuda.device_count()}"  # a missing device


def run(argv, capsys):
    """main(argv) -> (exit status, stderr); argparse's own errors raise SystemExit."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


CASES = [
    (DETECT + ["--conf", "-1"], "--conf -1: must be in [0, 1]"),
    (DETECT + ["--conf", "1.5"], "--conf 1.5: must be in [0, 1]"),
    (DETECT + ["--iou", "-0.5"], "--iou -0.5: must be in [0, 1]"),
    (DETECT + ["--max-det", "0"], "--max-det 0: must be an integer >= 1"),
    (DETECT + ["--imgsz", "0"], "--imgsz 0: must be a positive multiple of 32"),
    (DETECT + ["--imgsz", "300"], "--imgsz 300: must be a positive multiple of 32"),
    (DETECT + ["--batch", "0"], "--batch 0: must be an integer >= 1"),
    (DETECT + ["--tta", "--tta-scales", "1", "0"], "--tta-scales 0: must be > 0"),
    (DETECT + ["--max-frames", "0"], "--max-frames 0: must be an integer >= 1"),
    (DETECT + ["--device", NO_CUDA], f"--device {NO_CUDA}: "),
    (DETECT + ["--device", "gpu"], "--device gpu: expected auto, cpu, cuda, cuda:N, N or mps"),
    (EVAL + ["--imgsz", "300"], "--imgsz 300: must be a positive multiple of 32"),
    (EVAL + ["--device", NO_CUDA], f"--device {NO_CUDA}: "),
    (EVAL + ["--conf", "2"], "--conf 2: must be in [0, 1]"),
    (EVAL + ["--report-conf", "-0.1"], "--report-conf -0.1: must be in [0, 1]"),
    (EVAL + ["--match-iou", "1.1"], "--match-iou 1.1: must be in [0, 1]"),
    (EVAL + ["--coco-max-dets", "0"], "--coco-max-dets 0: must be an integer >= 1"),
    (EVAL + ["--batch", "0"], "--batch 0: must be an integer >= 1"),
    (EVAL + ["--worst", "-1"], "--worst -1: must be an integer >= 0"),
    (TRAIN + ["--batch", "0"], "--batch 0: must be an integer >= 1"),
    (TRAIN + ["--batch", "-4"], "--batch -4: must be an integer >= 1"),
    (TRAIN + ["--lr", "-1"], "--lr -1: must be > 0"),
    (TRAIN + ["--workers", "-1"], "--workers -1: must be an integer >= 0"),
    (TRAIN + ["--epochs", "0"], "--epochs 0: must be an integer >= 1"),
    (TRAIN + ["--imgsz", "300"], "--imgsz 300: must be a positive multiple of 32"),
    (TRAIN + ["--val-conf", "5"], "--val-conf 5: must be in [0, 1]"),
    (TRAIN + ["--mosaic", "1.5"], "--mosaic 1.5: must be in [0, 1]"),
    (TRAIN + ["--multiscale", "320", "100"], "--multiscale 100: must be a positive multiple of 32"),
    (TRAIN + ["--device", NO_CUDA], f"--device {NO_CUDA}: "),
    (EXPORT + ["--device", NO_CUDA], f"--device {NO_CUDA}: "),
    (EXPORT + ["--imgsz", "0"], "--imgsz 0: must be a positive multiple of 32"),
    (EXPORT + ["--conf", "-1"], "--conf -1: must be in [0, 1]"),
    (EXPORT + ["--nms", "--opset", "10"], "--opset 10: the in-graph NMS (--nms) needs opset >= 11"),
    (EXPORT + ["--int8", "--calib-images", "0"], "--calib-images 0: must be an integer >= 1"),
    (["anchors", "--data", "nope.yaml", "--n", "0"], "--n 0: must be an integer >= 1"),
    (["hog", "detect", "nope.jpg", "--model", "nope.npz", "--conf", "-1"], "--conf -1: must be in [0, 1]"),
    (["hog", "train", "--data", "nope.yaml", "--out", "m.npz", "--rounds", "-1"], "--rounds -1: must be an "
                                                                                    "integer >= 0"),
]


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in CASES])
def test_bad_value_is_one_line_exit_2(argv, message, capsys):
    code, err = run(argv, capsys)
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"yolokit {argv[0]}: error: ")
    assert message in lines[0]


def test_missing_cuda_says_so(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: --device cuda is valid here")
    for argv in (EVAL, EXPORT, DETECT):
        code, err = run(argv + ["--device", "cuda"], capsys)
        assert code == 2 and "--device cuda: this torch sees no CUDA device (use --device cpu)" in err


def test_unparsable_value_is_argparse_usage_exit_2(capsys):
    code, err = run(DETECT + ["--conf", "abc"], capsys)
    assert code == 2 and "argument --conf: invalid float value: 'abc'" in err and "Traceback" not in err


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=0), "--lr 0: must be > 0"),
    (dict(optimizer="lion"), "--optimizer lion: expected one of sgd, adamw"),
    (dict(weight_decay=-1e-4), "--weight-decay -0.0001: must be >= 0"),
    (dict(imgsz="big"), "--imgsz big: expected an integer"),
    (dict(val_iou=float("nan")), "--val-iou nan: expected a finite number"),
])
def test_train_config_is_validated_where_built(kwargs, message):
    from yolokit.settings import TrainConfig

    with pytest.raises(ConfigError) as info:
        TrainConfig(model="m", data="d", **kwargs)
    assert str(info.value) == message or str(info.value).startswith(message)


def test_train_config_reads_yaml_numbers_written_as_strings(tmp_path):
    from yolokit.settings import TrainConfig

    preset = tmp_path / "p.yaml"
    preset.write_text("model: m\ndata: d\nlr: 1e-3\nbatch: 8\n")  # YAML 1.1 reads 1e-3 as a string
    cfg = TrainConfig.from_yaml(preset)
    assert cfg.lr == 0.001 and isinstance(cfg.lr, float) and cfg.device == "auto"


def test_settings_defaults_resolve_the_device():
    from yolokit.settings import EvalSettings, PredictSettings, resolve_device

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert PredictSettings().device == expected == resolve_device(None) == resolve_device("auto")
    assert PredictSettings(device="0" if torch.cuda.is_available() else "cpu").device in ("cuda:0", "cpu")
    s = EvalSettings()
    assert (s.imgsz, s.conf, s.iou, s.max_det) == (None, None, None, None)  # the checkpoint's settings


def test_from_args_takes_the_namespace_fields():
    from yolokit.settings import EvalSettings

    args = argparse.Namespace(imgsz=320, conf=0.01, iou=None, max_det=None, device="cpu", batch=4, tta=False,
                              tta_scales=[1.0], report_conf=0.5, match_iou=0.75, coco_max_dets=10, other=1)
    s = EvalSettings.from_args(args)
    assert (s.imgsz, s.conf, s.batch, s.report_conf, s.match_iou, s.coco_max_dets) == (320, 0.01, 4, 0.5, 0.75, 10)
    with pytest.raises(ConfigError, match=r"^--match-iou 2: must be in \[0, 1\]$"):
        EvalSettings.from_args(args, match_iou=2)


def test_class_index_beyond_the_model_is_an_error():
    from yolokit.cli.detect import parse_classes

    assert parse_classes(["1", "dog"], ["cat", "dog"]) == [1, 1]
    with pytest.raises(ConfigError, match=r"^--classes 2: the model has 2 classes, indices 0\.\.1$"):
        parse_classes(["2"], ["cat", "dog"])


def test_a_bad_preset_value_names_the_file_unless_a_flag_overrides_it(tmp_path, capsys):
    preset = tmp_path / "p.yaml"
    preset.write_text("model: m\ndata: d\nbatch: 0\n")
    code, err = run(["train", "--config", str(preset)], capsys)
    assert code == 2 and err.strip() == f"yolokit train: error: {preset}: --batch 0: must be an integer >= 1"
    code, err = run(["train", "--config", str(preset), "--batch", "-1"], capsys)
    assert code == 2 and err.strip() == "yolokit train: error: --batch -1: must be an integer >= 1"
