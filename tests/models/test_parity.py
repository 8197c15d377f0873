"""Parity with OpenCV 4.14's Darknet importer on the six real models (REFERENCE_OPENCV_OUTPUTS in shared/).

Preprocessing as written at the top of each reference file: cv2.imread (BGR), plain resize to the cfg size with
cv2.resize's bilinear filter, RGB, /255, no letterbox.
"""

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from yolokit.models import load
from yolokit.ops.boxes import box_iou

from tests.models.conftest import FASTEST, fastest_files

IMAGES = ("dog.jpg", "person.jpg", "horses.jpg")


def read_reference_detections(path: Path) -> dict[tuple[str, str], list[tuple[str, float, list[float]]]]:
    """``{(cfg stem or '', image name): [(class, score, xyxy), ...]}`` from a REFERENCE_OPENCV_OUTPUTS.txt."""
    out, key = {}, None
    for line in path.read_text().splitlines():
        if "outputs=" in line and not line.startswith(" "):
            parts = line.split()
            stem = Path(parts[0]).stem if parts[0].endswith(".cfg") else ""
            image = Path(parts[1] if stem else parts[0]).name
            key = (stem, image)
            out[key] = []
        elif key and line.startswith("    ") and line.strip():
            *name, score, x1, y1, x2, y2 = line.split()
            out[key].append((" ".join(name), float(score), [float(v) for v in (x1, y1, x2, y2)]))
    return out


def network_input(image_path: Path, size: tuple[int, int]) -> torch.Tensor:
    bgr = cv2.imread(str(image_path))
    rgb = cv2.resize(bgr, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255.0


def as_opencv_rows(model, pred: torch.Tensor) -> list[np.ndarray]:
    """yolokit's decoded rows (anchor, row, col order; pixels; class probs) -> OpenCV's per-head layout
    (row, col, anchor order; boxes relative to the input; class probs x objectness)."""
    h, w = model.input_size
    outs, start = [], 0
    for spec in model.heads:
        gh, gw = spec.grid
        n = spec.num_boxes * gh * gw
        rows = pred[0, start:start + n].reshape(spec.num_boxes, gh, gw, -1).permute(1, 2, 0, 3).reshape(n, -1)
        rows = rows.clone()
        rows[:, [0, 2]] /= w
        rows[:, [1, 3]] /= h
        rows[:, 5:] *= rows[:, 4:5]
        outs.append(rows.numpy())
        start += n
    return outs


def check_raw(model, ref_npz, key_prefix: str, image_dir: Path):
    for image in IMAGES:
        with torch.no_grad():
            pred = model(network_input(image_dir / image, model.input_size))
        for i, mine in enumerate(as_opencv_rows(model, pred)):
            ref = ref_npz[f"{key_prefix}{image}|out{i}"]
            assert mine.shape == ref.shape
            np.testing.assert_allclose(mine[:, :5], ref[:, :5], rtol=0, atol=1e-4, err_msg=f"{image} out{i}")
            # OpenCV zeroes class scores below 0.2; compare the rest, and check yolokit did NOT zero them.
            nz = ref[:, 5:] > 0
            np.testing.assert_allclose(mine[:, 5:][nz], ref[:, 5:][nz], rtol=0, atol=1e-4)
            assert (mine[:, 5:][~nz] > 0).any() and mine[:, 5:][~nz].max() < 0.2 + 1e-4


def check_detections(model, expected, image_dir: Path):
    for image in IMAGES:
        rgb = cv2.imread(str(image_dir / image))[:, :, ::-1].copy()
        h, w = rgb.shape[:2]
        det = model.predict([rgb], conf=0.25, iou=0.45, letterbox=False, agnostic=True)[0]
        ref = expected[image]
        assert det.shape[0] == len(ref), f"{image}: {det[:, 4:].tolist()} vs {ref}"
        if not ref:
            continue
        names = [model.class_names[int(c)] for c in det[:, 5]]
        # predict clips boxes to the image; OpenCV's listing does not, so clip the reference alike.
        ref_boxes = torch.tensor([r[2] for r in ref])
        ref_boxes[:, [0, 2]] = ref_boxes[:, [0, 2]].clamp(0, w)
        ref_boxes[:, [1, 3]] = ref_boxes[:, [1, 3]].clamp(0, h)
        iou = box_iou(ref_boxes, det[:, :4])
        for k, (name, score, _) in enumerate(ref):
            j = int(iou[k].argmax())
            assert names[j] == name, f"{image}: {name} matched {names[j]}"
            assert iou[k, j] >= 0.99, f"{image}: {name} IoU {iou[k, j]:.4f}"
            assert abs(det[j, 4].item() - score) <= 0.01, f"{image}: {name} {det[j, 4].item():.4f} vs {score}"


def test_yolov3_tiny_raw_outputs(tiny, shared):
    ref = np.load(shared / "yolov3_tiny_darknet" / "REFERENCE_OPENCV_OUTPUTS.npz")
    check_raw(tiny, ref, "", shared / "yolo_fastest_darknet" / "data")


def test_yolov3_tiny_detections(tiny, shared):
    expected = read_reference_detections(shared / "yolov3_tiny_darknet" / "REFERENCE_OPENCV_OUTPUTS.txt")
    check_detections(tiny, {img: v for (_, img), v in expected.items()}, shared / "yolo_fastest_darknet" / "data")


@pytest.mark.parametrize("stem", FASTEST)
def test_yolo_fastest(shared, stem):
    root = shared / "yolo_fastest_darknet"
    model = load(*fastest_files(shared, stem))
    name = Path(stem).name
    check_raw(model, np.load(root / "reference_opencv_outputs.npz"), f"{name}|", root / "data")
    expected = read_reference_detections(root / "REFERENCE_OPENCV_OUTPUTS.txt")
    check_detections(model, {img: v for (s, img), v in expected.items() if s == name}, root / "data")
