"""Training on a handful of real images, the detector's output contract, and pickle-free model files."""

import numpy as np
import pytest
import torch

from yolokit.errors import WeightsError
from yolokit.hog import HogParams, HogSvmDetector, train
from yolokit.hog.features import level_grid, window_grids
from yolokit.hog.train import object_grid, window_for
from yolokit.ops.boxes_np import box_iou

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def samples(shared):
    from yolokit.data import load_dataset

    data = load_dataset(ROOT / "configs" / "data" / "raccoon.yaml", split="train")
    return [data[i] for i in range(8)]


@pytest.fixture(scope="module")
def model(samples):
    return train(samples, class_name="raccoon", inner=32, imgsz=160, rounds=1, jitter=0,
                 neg_per_image=20, hard_per_image=10)


def test_window_follows_the_boxes_aspect_ratio():
    wide = np.array([[0, 0, 200, 100], [10, 10, 170, 90], [0, 0, 100, 60]], np.float32)
    (w, h), margin = window_for(wide, inner=48, margin=8)
    assert w > h and (w - 16) % 8 == 0 and (h - 16) % 8 == 0
    assert (w - 16) / (h - 16) == pytest.approx(2.0, rel=0.25)
    assert window_for(wide[:, [1, 0, 3, 2]], inner=48)[0] == (h, w)        # transposed boxes: transposed window


def test_positive_features_are_what_the_scanner_reads(shared):
    """A box that sits exactly on a window of the level grid gives the very same features both ways."""
    import cv2

    image = cv2.imread(str(shared / "raccoon" / "images" / "raccoon-63.jpg"))
    p = HogParams((64, 64))
    # window with top-left block (3, 5) -> pixels (40, 24); the object is the window inset by margin 8
    box = np.array([40 + 8, 24 + 8, 40 + 64 - 8, 24 + 64 - 8], np.float32)
    mine = object_grid(image, box, p, (8, 8))
    ref = window_grids(level_grid(image, p), np.array([3]), np.array([5]), p)[0]
    np.testing.assert_allclose(mine, ref, atol=1e-5)


def test_trained_model_finds_its_training_objects(model, samples):
    assert model.params.window[0] % 8 == 0
    dets = model.predict([s.image for s in samples], conf=0.001)
    best = []
    for d, s in zip(dets, samples):
        assert d.shape[1] == 6 and d.dtype == torch.float32
        assert torch.all(d[:-1, 4] >= d[1:, 4])                         # sorted by score
        assert torch.all((d[:, 4] >= 0) & (d[:, 4] <= 1))                # calibrated to [0, 1]
        top = d[:1, :4].numpy()
        best.append(box_iou(top, s.boxes).max() if len(top) else 0.0)
    assert np.mean(np.array(best) >= 0.5) >= 0.5, best


def test_calibration_is_increasing(model):
    p = model.probability(np.array([-2.0, -1.0, 0.0, 1.0]))
    assert np.all(np.diff(p) > 0) and np.all((p > 0) & (p < 1))


def test_save_load_roundtrip_without_pickle(model, tmp_path, samples):
    path = model.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as z:                          # plain arrays only
        assert all(z[k].dtype != object for k in z.files)
    again = HogSvmDetector.load(path)
    assert again.params == model.params and again.class_names == ["raccoon"]
    assert again.margin == model.margin and again.imgsz == model.imgsz == 160
    a = model.predict(samples[0].image, conf=0.01)[0]
    b = again.predict(samples[0].image, conf=0.01)[0]
    assert torch.equal(a, b)


def test_load_refuses_pickles_and_foreign_files(tmp_path):
    bad = tmp_path / "pickled.npz"
    np.savez(bad, format=np.array("yolokit-hog-svm-1"), weights=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(WeightsError, match="pickled.npz"):
        HogSvmDetector.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(WeightsError, match="not a yolokit HOG"):
        HogSvmDetector.load(other)
    with pytest.raises(WeightsError, match="not found"):
        HogSvmDetector.load(tmp_path / "missing.npz")


def test_empty_image_gives_empty_detections(model):
    out = model.predict(np.zeros((20, 20, 3), np.uint8))[0]
    assert out.shape == (0, 6)
