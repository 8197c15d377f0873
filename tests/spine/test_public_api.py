"""The documented API works whatever was imported before it (each case in a fresh interpreter, since the
order of imports is the point)."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CASES = {
    "postprocess after its module": """
import yolokit.models.postprocess
import yolokit, torch
pred = torch.zeros(1, 4, 6); pred[0, 0] = torch.tensor([50., 50., 20., 20., 0.9, 1.0])
(det,) = yolokit.postprocess(pred, conf_thres=0.25)
assert det.shape == (1, 6), det
""",
    "postprocess after model.predict imported it": """
import numpy as np, yolokit
model = yolokit.load("yolo-lite")
model.predict([np.zeros((64, 80, 3), np.uint8)])
import torch
assert isinstance(yolokit.postprocess(torch.zeros(2, 3, 6)), list)
from yolokit import postprocess
assert isinstance(postprocess(torch.zeros(1, 3, 6)), list)
""",
    "load, Predictor and evaluate before and after their modules": """
import yolokit.models.predict, yolokit.eval
import numpy as np, yolokit
model = yolokit.load("yolo-lite")
dets = yolokit.Predictor(model, imgsz=224)([np.zeros((60, 90, 3), np.uint8)])
assert len(dets) == 1 and dets[0].shape[1] == 6
assert yolokit.evaluate is yolokit.eval.evaluate
""",
}


@pytest.mark.parametrize("name", list(CASES))
def test_documented_calls_in_any_import_order(name):
    r = subprocess.run([sys.executable, "-c", CASES[name]], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
