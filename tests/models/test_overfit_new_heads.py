"""YOLOv4-tiny and YOLOv7-tiny (new_coords=1 heads) from random initialisation overfit 16 real raccoon images to
AP50 >= 0.9 through ``yolokit train``, with their cfgs' own [yolo] training keys as the loss defaults (ciou,
iou_normalizer 0.07 / 0.05, ...). The recipe is configs/train/overfit-yolov3-tiny.yaml's (AdamW 1e-3, no
augmentation, the whole set in one batch) at 160x160; measured: yolov4-tiny AP50 1.00 at epoch 50, yolov7-tiny
0.92 at epoch 60 (about a minute each on 2 cores)."""

import re
from pathlib import Path

import pytest

from yolokit.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["yolov4-tiny", "yolov7-tiny"])
def test_overfits_16_raccoon_images(shared, name, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("YOLOKIT_DATA_ROOT", str(shared))
    code = main(["train", "--config", str(ROOT / "configs/train/overfit-yolov3-tiny.yaml"),
                 "--model", str(Path(shared) / "darknet_cfgs" / f"{name}.cfg"), "--imgsz", "160",
                 "--batch", "16", "--nbs", "16", "--limit-train", "16", "--limit-val", "16", "--epochs", "150",
                 "--val-every", "10", "--seed", "0", "--out", str(tmp_path / "run"), "--exist-ok", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    best = float(re.search(r"best val AP50 ([0-9.]+)", out).group(1))
    assert best >= 0.9, out[-2000:]
