"""Anchor k-means: hand-computed IoU, exact recovery of separated shapes, real data vs defaults."""

from pathlib import Path

import numpy as np

from yolokit.cli import main
from yolokit.data import load_dataset
from yolokit.data.anchors import DEFAULT_ANCHORS, anchor_fitness, box_sizes, kmeans_anchors

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"


def test_kmeans_recovers_three_shapes_exactly():
    shapes = np.array([[10.0, 20.0], [100.0, 50.0], [300.0, 300.0]])
    wh = np.repeat(shapes, [5, 7, 3], axis=0)
    anchors = kmeans_anchors(wh, 3, seed=1)
    np.testing.assert_allclose(anchors, shapes)  # sorted by area
    assert anchor_fitness(wh, anchors) == (1.0, 1.0)


def test_box_sizes_are_letterboxed(shared):
    ds = load_dataset(CONFIGS / "raccoon.yaml", "val")
    wh = box_sizes(ds, 416)
    assert wh.shape == (44, 2) and wh.max() <= 416 + 1e-3
    r = ds.records[0]
    b = r.boxes[0]
    np.testing.assert_allclose(wh[0], [(b[2] - b[0]) * 416 / max(r.size), (b[3] - b[1]) * 416 / max(r.size)])


def test_kmeans_beats_default_anchors_on_coco128(shared, capsys):
    ds = load_dataset(CONFIGS / "coco128.yaml", "train", check_images=False)
    wh = box_sizes(ds, 416)
    assert len(wh) == 929
    ours = kmeans_anchors(wh, 9, seed=0)
    assert anchor_fitness(wh, ours)[0] > anchor_fitness(wh, DEFAULT_ANCHORS[9])[0]
    np.testing.assert_allclose(ours, kmeans_anchors(wh, 9, seed=0))  # seeded
    assert main(["anchors", str(CONFIGS / "raccoon.yaml"), "--n", "6", "--imgsz", "416"]) == 0
    out = capsys.readouterr().out
    assert "anchors = " in out and "yolov3-tiny default" in out and len(out.split("anchors = ")[1].split(",  ")) == 6
