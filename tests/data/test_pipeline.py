"""Train pipeline: collate layout, letterbox metadata, flip geometry, mosaic, multi-scale batches."""

from pathlib import Path

import numpy as np
import pytest
import torch

from yolokit.data import load_dataset
from yolokit.data.augment import AugmentConfig, mosaic
from yolokit.data.loader import MultiScaleBatchSampler, TrainDataset, build_loader, collate
from yolokit.ops.letterbox import unletterbox_boxes

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"


def test_collate_variable_box_counts():
    a = (np.full((4, 6, 3), 255, np.uint8), np.array([[0, 0, 2, 2], [1, 1, 3, 3]], np.float32),
         np.array([3, 1]), {"index": 0})
    b = (np.zeros((4, 6, 3), np.uint8), np.zeros((0, 4), np.float32), np.zeros(0, np.int64), {"index": 1})
    c = (np.zeros((4, 6, 3), np.uint8), np.array([[2, 2, 5, 4]], np.float32), np.array([7]), {"index": 2})
    images, targets, metas = collate([a, b, c])
    assert images.shape == (3, 3, 4, 6) and images.dtype == torch.float32
    assert images[0].min() == 1.0 and images[1].max() == 0.0
    assert targets.tolist() == [[0, 3, 0, 0, 2, 2], [0, 1, 1, 1, 3, 3], [2, 7, 2, 2, 5, 4]]
    assert [m["index"] for m in metas] == [0, 1, 2]
    _, empty, _ = collate([b])
    assert empty.shape == (0, 6)


def test_eval_items_map_back_to_original_boxes(shared):
    ds = load_dataset(CONFIGS / "raccoon.yaml", "val")
    td = TrainDataset(ds, 416, augment=False)
    for i in range(0, len(ds), 7):
        image, boxes, labels, meta = td[i]
        assert image.shape == (416, 416, 3)
        back = unletterbox_boxes(boxes, meta["scale"], meta["pad"], meta["orig_size"])
        np.testing.assert_allclose(back, ds.records[i].boxes, atol=1e-3)
        np.testing.assert_array_equal(labels, ds.records[i].labels)


def test_flip_only_mirrors_image_and_boxes(shared):
    ds = load_dataset(CONFIGS / "raccoon.yaml", "val")
    plain = TrainDataset(ds, 320, augment=False)[3]
    cfg = AugmentConfig.none()
    cfg.hflip = 1.0
    flipped = TrainDataset(ds, 320, augment=cfg)[3]
    # The train path resizes with INTER_AREA before the letterbox, so pixels agree only approximately.
    diff = np.abs(flipped[0].astype(int) - plain[0][:, ::-1].astype(int))
    assert diff.mean() < 3 and np.abs(flipped[0].astype(int) - plain[0].astype(int)).mean() > 10
    expect = plain[1].copy()
    expect[:, [0, 2]] = 320 - plain[1][:, [2, 0]]
    np.testing.assert_allclose(flipped[1], expect, atol=0.5)


def test_augmented_boxes_stay_valid(shared):
    ds = load_dataset(CONFIGS / "coco128.yaml", "train", check_images=False)
    td = TrainDataset(ds, 256, augment=AugmentConfig(mosaic=0.5, mixup=0.3, crop=0.5))
    assert td.dropped["iscrowd"] == 10
    for i in range(12):
        image, boxes, labels, _ = td[i]
        assert image.shape == (256, 256, 3) and image.dtype == np.uint8
        assert boxes.shape == (len(labels), 4) and labels.dtype == np.int64
        assert (boxes >= 0).all() and (boxes <= 256).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert ((labels >= 0) & (labels < 80)).all()


def test_mosaic_boxes_follow_their_pixels():
    """Four flat images, each with one box painted in its own colour: every box the mosaic keeps must
    still cover pixels of its colour."""
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    parts = []
    for k, col in enumerate(colours):
        img = np.full((100, 160, 3), 50, np.uint8)
        img[20:80, 30:130] = col
        parts.append((img, np.array([[30, 20, 130, 80]], np.float32), np.array([k])))
    for seed in range(5):
        image, boxes, labels = mosaic(parts, 160, np.random.default_rng(seed))
        assert image.shape == (160, 160, 3) and len(boxes) >= 1
        for box, k in zip(boxes.astype(int), labels):
            region = image[box[1]:box[3], box[0]:box[2]].reshape(-1, 3)
            assert (region == colours[k]).all(), (seed, k)


def test_multiscale_sampler_is_reproducible_and_covers_every_index():
    s1 = MultiScaleBatchSampler(37, 8, sizes=(320, 416, 608), seed=3)
    s2 = MultiScaleBatchSampler(37, 8, sizes=(320, 416, 608), seed=3)
    e1, e2 = list(s1), list(s2)
    assert e1 == e2 and len(e1) == 5
    assert sorted(i for b in e1 for i, _ in b) == list(range(37))
    assert all(len({s for _, s in b}) == 1 for b in e1)
    assert {b[0][1] for b in e1 + list(s1) + list(s1)} <= {320, 416, 608}
    assert list(s1) != e1  # the next epoch is another order


@pytest.mark.slow
def test_loader_two_workers_reproducible(shared):
    ds = load_dataset(CONFIGS / "raccoon.yaml", "train", check_images=False)
    firsts = []
    for _ in range(2):
        loader = build_loader(ds, batch_size=4, size=224, workers=2, seed=5)
        images, targets, metas = next(iter(loader))
        firsts.append((images, targets, [m["index"] for m in metas]))
    assert firsts[0][2] == firsts[1][2]
    torch.testing.assert_close(firsts[0][1], firsts[1][1])
    torch.testing.assert_close(firsts[0][0], firsts[1][0])
    assert firsts[0][0].shape == (4, 3, 224, 224)


@pytest.mark.slow
def test_loader_workers_augment_each_epoch_anew(shared):
    """With DataLoader workers, each epoch draws new augmentations (the workers' seeds come from (seed, epoch)),
    and the same epoch replays them exactly."""
    ds = load_dataset(CONFIGS / "raccoon.yaml", "train", check_images=False)
    ds.records = ds.records[:4]
    batches = {}
    for epoch in (0, 1, 1):
        loader = build_loader(ds, batch_size=4, size=160, workers=2, seed=5, shuffle=False, epoch=epoch)
        images, _, metas = next(iter(loader))
        assert [m["index"] for m in metas] == [0, 1, 2, 3]
        if epoch in batches:
            torch.testing.assert_close(images, batches[epoch], rtol=0, atol=0)
        batches[epoch] = images
    assert not torch.equal(batches[0], batches[1])
