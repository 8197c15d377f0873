"""One model, one number, whatever the door: the AP50 training reports for best.pt is what `yolokit eval --model
best.pt` reports with no flags (the checkpoint carries its validation settings), and `yolokit detect --save-json`
followed by `yolokit eval --pred` equals `yolokit eval --model` at the same settings."""

import json
from pathlib import Path

import pytest

from yolokit.cli import main
from yolokit.engine import TrainConfig, train
from yolokit.models import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
RACCOON = str(ROOT / "configs" / "data" / "raccoon.yaml")


def _eval_json(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["eval", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_training_ap50_is_eval_ap50_without_flags(shared, tmp_path, capsys):
    d = shared / "yolov3_tiny_darknet"
    cfg = TrainConfig(model=str(d / "yolov3-tiny.cfg"), weights=str(d / "yolov3-tiny.weights"), data=RACCOON,
                      out=str(tmp_path / "run"), epochs=1, imgsz=128, batch=4, nbs=4, burn_in=1, lr=1e-3,
                      limit_train=8, progress=False, tensorboard=False, val_conf=0.01, val_iou=0.5)
    result = train(cfg)
    out = Path(result["out"])
    state = load_checkpoint(out / "best.pt")
    assert state["settings"] == {"imgsz": 128, "conf": 0.01, "iou": 0.5, "max_det": 300}
    m = _eval_json(capsys, "--data", RACCOON, "--model", str(out / "best.pt"))
    assert m["voc"] == pytest.approx(result["best_map50"], abs=0.002)
    # and the flags still win over the saved settings (another size gives another number)
    other = _eval_json(capsys, "--data", RACCOON, "--model", str(out / "best.pt"), "--imgsz", "224")
    assert other["voc"] != pytest.approx(m["voc"], abs=1e-6)


@pytest.mark.slow
def test_detect_json_then_eval_pred_equals_eval_model(shared, tmp_path, capsys):
    d = shared / "yolov3_tiny_darknet"
    model = ["--model", str(d / "yolov3-tiny.cfg"), "--weights", str(d / "yolov3-tiny.weights")]
    images = shared / "coco128_cocojson" / "train2017"
    subset = tmp_path / "images"
    subset.mkdir()
    ann = json.loads((shared / "coco128_cocojson" / "annotations" / "instances_train2017.json").read_text())
    keep = sorted(ann["images"], key=lambda r: r["id"])[:12]
    for rec in keep:
        (subset / rec["file_name"]).symlink_to(images / rec["file_name"])
    ids = {r["id"] for r in keep}
    ann = {**ann, "images": keep, "annotations": [a for a in ann["annotations"] if a["image_id"] in ids]}
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    gt = ["--format", "coco", "--images", str(subset), "--annotations", str(tmp_path / "ann.json")]
    settings = ["--imgsz", "320", "--conf", "0.05", "--iou", "0.5"]
    direct = _eval_json(capsys, *gt, *model, *settings)
    assert main(["detect", str(subset), *model, *settings, "--save-json", "--no-save", "--out", str(tmp_path / "det"),
                 "--no-progress"]) == 0
    (pred,) = (tmp_path / "det").glob("*.json")
    via_json = _eval_json(capsys, *gt, "--pred", str(pred))
    assert via_json["detections"] == direct["detections"]
    assert via_json["voc"] == pytest.approx(direct["voc"], abs=1e-9)
    assert via_json["coco"]["AP"] == pytest.approx(direct["coco"]["AP"], abs=1e-9)
