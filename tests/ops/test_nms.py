"""The post-processor: keeps identical to a per-image torchvision loop, layout, edge cases and errors."""

import numpy as np
import pytest
import torch
import torchvision

import yolokit.ops.nms as pp
from tests.reference import nms_loop, nms_per_group
from benchmarks.nms import dense_workload  # the benchmark's workload (data), not its reference loop
from yolokit.ops.boxes import cxcywh_to_xyxy
from yolokit.models.postprocess import postprocess
from yolokit.ops.nms import grouped_nms, nms_xyxy


def _assert_same(ours, ref):
    assert len(ours) == len(ref)
    for o, r in zip(ours, ref):
        assert o.shape == r.shape
        torch.testing.assert_close(o, r.to(o.dtype))


@pytest.mark.parametrize("conf", [0.25, 0.001])
@pytest.mark.parametrize("max_det", [300, 20])
def test_matches_reference_loop_on_dense_workload(conf, max_det, device):
    pred = dense_workload(batch=3, boxes=6000, classes=20, seed=1, device=device)
    _assert_same(postprocess(pred, conf, 0.45, max_det=max_det), nms_loop(pred, conf, 0.45, max_det))


def test_matches_reference_loop_on_random_input(device):
    g = torch.Generator().manual_seed(3)
    pred = torch.rand(4, 2000, 5 + 7, generator=g) * torch.tensor([400, 400, 80, 80] + [1.0] * 8)
    pred = pred.to(device)
    for iou in (0.3, 0.45, 0.7):
        _assert_same(postprocess(pred, 0.05, iou), nms_loop(pred, 0.05, iou))


def _opencv_reference_as_pred(shared, image):
    """Real yolov3-tiny outputs (OpenCV's reference) in the post-processor layout at 416 px."""
    z = np.load(shared / "yolov3_tiny_darknet" / "REFERENCE_OPENCV_OUTPUTS.npz")
    rows = torch.from_numpy(np.concatenate([z[f"{image}|out0"], z[f"{image}|out1"]]))
    obj = rows[:, 4:5]
    probs = torch.where(obj > 0, rows[:, 5:] / obj.clamp(min=1e-12), torch.zeros_like(rows[:, 5:])).clamp(max=1)
    return torch.cat((rows[:, :4] * 416, obj, probs), 1)[None]


@pytest.mark.parametrize("image", ["dog.jpg", "person.jpg", "horses.jpg"])
def test_real_model_outputs(shared, image):
    pred = _opencv_reference_as_pred(shared, image)
    for agnostic in (False, True):
        ours = postprocess(pred, 0.25, 0.45, agnostic=agnostic)[0]
        x = pred[0]
        scores, cls = (x[:, 5:] * x[:, 4:5]).max(1)
        m = scores > 0.25
        boxes = cxcywh_to_xyxy(x[m, :4])
        groups = torch.zeros_like(cls[m]) if agnostic else cls[m]
        keep = torchvision.ops.batched_nms(boxes, scores[m], groups, 0.45)
        torch.testing.assert_close(ours[:, :4], boxes[keep])
        assert ours[:, 5].long().tolist() == cls[m][keep].tolist()
    # the reference's class-agnostic detections: dog, car, truck, bicycle on dog.jpg
    if image == "dog.jpg":
        names = (shared / "yolov3_tiny_darknet" / "coco.names").read_text().split("\n")
        det = postprocess(pred, 0.25, 0.45, agnostic=True)[0]
        assert [names[int(c)] for c in det[:, 5]] == ["dog", "car", "truck", "bicycle"]


def test_output_layout_sorted_and_capped():
    pred = dense_workload(batch=2, boxes=3000, classes=10, seed=4)
    for det in postprocess(pred, 0.001, 0.5, max_det=50):
        assert det.shape[1] == 6 and len(det) <= 50
        assert torch.all(det[:-1, 4] >= det[1:, 4])
        assert torch.all(det[:, 2] >= det[:, 0]) and torch.all(det[:, 3] >= det[:, 1])


def test_nothing_survives_gives_empty_tensors():
    pred = torch.zeros(3, 100, 9)
    out = postprocess(pred)
    assert len(out) == 3 and all(d.shape == (0, 6) for d in out)
    pred = torch.zeros(2, 0, 9)
    assert all(d.shape == (0, 6) for d in postprocess(pred))


def test_classes_filter_and_agnostic():
    pred = dense_workload(batch=2, boxes=3000, classes=10, seed=5)
    only = postprocess(pred, 0.25, classes=[1, 3])
    full = postprocess(pred, 0.25)
    for o, f in zip(only, full):
        assert set(o[:, 5].long().tolist()) <= {1, 3}
        _assert_same([o], [f[torch.isin(f[:, 5].long(), torch.tensor([1, 3]))]])
    for x, det in zip(pred, postprocess(pred, 0.25, agnostic=True)):
        scores, cls = (x[:, 5:] * x[:, 4:5]).max(1)
        m = scores > 0.25
        keep = torchvision.ops.nms(cxcywh_to_xyxy(x[m, :4]), scores[m], 0.45)
        torch.testing.assert_close(det[:, 4], scores[m][keep])
        assert det[:, 5].long().tolist() == cls[m][keep].tolist()


def test_multi_label_matches_per_class_reference():
    pred = dense_workload(batch=2, boxes=2000, classes=6, seed=6)
    out = postprocess(pred, 0.1, 0.45, multi_label=True)
    for x, det in zip(pred, out):
        s = x[:, 5:] * x[:, 4:5]
        i, c = (s > 0.1).nonzero(as_tuple=True)
        boxes, scores = cxcywh_to_xyxy(x[i, :4]), s[i, c]
        keep = torchvision.ops.batched_nms(boxes, scores, c, 0.45)[:300]
        torch.testing.assert_close(det[:, :5], torch.cat((boxes[keep], scores[keep, None]), 1))
        assert det[:, 5].long().tolist() == c[keep].tolist()


def _candidates(pred, conf):
    """Every (image, box) whose best class score passes ``conf``: xyxy boxes, scores, groups image x class."""
    scores, cls = (pred[..., 5:] * pred[..., 4:5]).max(-1)
    img, box = (scores > conf).nonzero(as_tuple=True)
    return cxcywh_to_xyxy(pred[img, box, :4]), scores[img, box], img * (pred.shape[2] - 5) + cls[img, box]


def _dense_candidates(seed, ties, conf=0.25):
    """Candidates of a bench-sized batch (> 1000, so the all-groups greedy steps run), grouped by image x class.
    With ``ties``, scores take 20 values and boxes sit on a 4-pixel grid: many equal scores and equal boxes.
    At conf 0.001 the low-scored background joins: 320 groups of spread-out boxes."""
    boxes, scores, groups = _candidates(dense_workload(batch=4, boxes=12000, classes=80, seed=seed), conf)
    if ties:
        boxes, scores = (boxes / 4).round() * 4, (scores * 20).ceil() / 20
    return boxes, scores, groups


@pytest.mark.parametrize("seed,ties,conf", [(0, False, 0.25), (1, False, 0.25), (2, True, 0.25), (3, True, 0.25),
                                            (4, False, 0.001), (5, True, 0.001)])
@pytest.mark.parametrize("iou", [0.3, 0.45, 0.7])
def test_grouped_nms_matches_the_kernel_per_group(seed, ties, conf, iou, monkeypatch):
    boxes, scores, groups = _dense_candidates(seed, ties, conf)
    steps = []
    monkeypatch.setattr(pp, "_greedy_step", lambda *a: steps.append(1) or _greedy_step(*a))
    assert sorted(grouped_nms(boxes, scores, groups, iou).tolist()) == nms_per_group(boxes, scores, groups, iou)
    assert steps, "the all-groups greedy steps did not run"


_greedy_step = pp._greedy_step


def test_grouped_nms_on_real_outputs_at_every_threshold(shared):
    """yolov3-tiny's decoded outputs on 8 coco128 val2017 photos at 640: few clustered candidates at conf 0.25,
    ~2k spread-out ones in ~60 (image, class) groups at conf 0.001."""
    from benchmarks.nms import real_workload

    pred = real_workload(batch=8, size=640, shared=shared)
    for conf in (0.25, 0.05, 0.001):
        boxes, scores, groups = _candidates(pred, conf)
        for iou in (0.45, 0.6):
            assert sorted(grouped_nms(boxes, scores, groups, iou).tolist()) == nms_per_group(boxes, scores, groups, iou)


def test_grouped_nms_with_infinite_or_nan_values():
    boxes, scores, groups = _dense_candidates(0, False)
    boxes[::50, 2] = float("inf")              # no finite span: one group per kernel call
    assert sorted(grouped_nms(boxes, scores, groups, 0.45).tolist()) == nms_per_group(boxes, scores, groups, 0.45)
    scores[7] = float("nan")                   # no greedy steps; the kernel decides as it does alone
    assert sorted(grouped_nms(boxes, scores, groups, 0.45).tolist()) == nms_per_group(boxes, scores, groups, 0.45)


def test_nms_xyxy_matches_batched_nms():
    pred = dense_workload(batch=1, boxes=2000, classes=5, seed=7)[0]
    boxes, scores, cls = cxcywh_to_xyxy(pred[:, :4]), pred[:, 4], pred[:, 5:].argmax(1)
    keep = nms_xyxy(boxes, scores, cls, 0.5)
    assert keep.tolist() == torchvision.ops.batched_nms(boxes, scores, cls, 0.5).tolist()
    assert nms_xyxy(boxes, scores, cls, 0.5, agnostic=True).tolist() == torchvision.ops.nms(boxes, scores, 0.5).tolist()


@pytest.mark.parametrize("pred,match", [
    (torch.zeros(10, 85), "shape"),
    (torch.zeros(1, 10, 5), "C >= 1"),
    (torch.zeros(0, 10, 85), "empty batch"),
    (torch.zeros(1, 10, 85, dtype=torch.int64), "floating-point"),
])
def test_bad_arguments(pred, match):
    with pytest.raises((ValueError, TypeError), match=match):
        postprocess(pred)


def test_nan_scores_are_an_error():
    pred = dense_workload(batch=1, boxes=100, classes=3, seed=8)
    pred[0, 5, 4] = float("nan")
    with pytest.raises(ValueError, match="NaN objectness"):
        postprocess(pred)
    pred = dense_workload(batch=1, boxes=100, classes=3, seed=8)
    pred[0, :, 6] = float("nan")
    with pytest.raises(ValueError, match="NaN class"):
        postprocess(pred, 0.001)


def test_bad_thresholds():
    pred = torch.zeros(1, 10, 8)
    with pytest.raises(ValueError, match="conf_thres"):
        postprocess(pred, conf_thres=1.5)
    with pytest.raises(ValueError, match="max_det"):
        postprocess(pred, max_det=0)
