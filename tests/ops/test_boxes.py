"""Box ops: hand-computed cases, torchvision agreement, conversions, gradients, devices."""

import math

import pytest
import torch
import torchvision.ops as tvo

from yolokit.ops import boxes as B

A = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
C = torch.tensor([[1.0, 1.0, 3.0, 3.0]])


def test_hand_computed_pair():
    # intersection 1, union 4 + 4 - 1 = 7, enclosing box 3x3 = 9
    assert B.box_iou(A, C).item() == pytest.approx(1 / 7)
    assert B.box_giou(A, C).item() == pytest.approx(1 / 7 - (9 - 7) / 9)
    # centres (1,1) and (2,2): distance^2 = 2, enclosing diagonal^2 = 18; equal aspect ratios so v = 0
    assert B.box_diou(A, C).item() == pytest.approx(1 / 7 - 2 / 18)
    assert B.box_ciou(A, C).item() == pytest.approx(1 / 7 - 2 / 18)


def test_ciou_aspect_term():
    a = torch.tensor([[0.0, 0.0, 4.0, 2.0]])
    b = torch.tensor([[0.0, 0.0, 2.0, 4.0]])
    iou = 4 / 12
    dist2, diag2 = 1 + 1, 16 + 16
    v = 4 / math.pi**2 * (math.atan(2 / 4) - math.atan(4 / 2)) ** 2
    alpha = v / (1 - iou + v)
    assert B.box_ciou(a, b).item() == pytest.approx(iou - dist2 / diag2 - alpha * v, rel=1e-5)


def _random_boxes(n, device, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    wh = torch.rand(n, 2, generator=g) * 50 + 1
    return torch.cat((xy, xy + wh), 1).to(device)


@pytest.mark.parametrize("ours,theirs", [
    (B.box_iou, tvo.box_iou),
    (B.box_giou, tvo.generalized_box_iou),
    (B.box_diou, tvo.distance_box_iou),
    (B.box_ciou, tvo.complete_box_iou),
])
def test_pairwise_matches_torchvision(ours, theirs, device):
    a, b = _random_boxes(37, device, 0), _random_boxes(23, device, 1)
    out = ours(a, b)
    assert out.shape == (37, 23)
    assert out.device.type == device
    torch.testing.assert_close(out, theirs(a, b), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("ours,pairwise", [
    (B.elementwise_iou, B.box_iou),
    (B.elementwise_giou, B.box_giou),
    (B.elementwise_diou, B.box_diou),
    (B.elementwise_ciou, B.box_ciou),
])
def test_elementwise_is_pairwise_diagonal(ours, pairwise, device):
    a, b = _random_boxes(31, device, 2), _random_boxes(31, device, 3)
    torch.testing.assert_close(ours(a, b), pairwise(a, b).diagonal())


def test_elementwise_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="equal shapes"):
        B.elementwise_iou(_random_boxes(3, "cpu", 0), _random_boxes(4, "cpu", 0))


def test_disjoint_and_identical():
    far = torch.tensor([[10.0, 10.0, 12.0, 12.0]])
    assert B.box_iou(A, far).item() == 0.0
    assert B.box_giou(A, far).item() < 0
    assert B.elementwise_ciou(A, A).item() == pytest.approx(1.0, abs=1e-6)


def test_conversions_round_trip():
    xyxy = _random_boxes(50, "cpu", 4)
    torch.testing.assert_close(B.cxcywh_to_xyxy(B.xyxy_to_cxcywh(xyxy)), xyxy)
    torch.testing.assert_close(B.xywh_to_xyxy(B.xyxy_to_xywh(xyxy)), xyxy)
    torch.testing.assert_close(B.denormalize(B.normalize(xyxy, 640, 480), 640, 480), xyxy)
    torch.testing.assert_close(B.xyxy_to_cxcywh(xyxy), tvo.box_convert(xyxy, "xyxy", "cxcywh"))
    torch.testing.assert_close(B.xyxy_to_xywh(xyxy), tvo.box_convert(xyxy, "xyxy", "xywh"))
    norm = B.normalize(torch.tensor([[64.0, 48.0, 640.0, 480.0]]), 640, 480)
    torch.testing.assert_close(norm, torch.tensor([[0.1, 0.1, 1.0, 1.0]]))


def test_clip_and_area():
    box = torch.tensor([[-5.0, 10.0, 700.0, 500.0], [3.0, 3.0, 1.0, 8.0]])
    assert B.clip(box, 640, 480).tolist()[0] == [0.0, 10.0, 640.0, 480.0]
    assert B.area(box).tolist() == [705 * 490, 0.0]


@pytest.mark.parametrize("fn", [B.elementwise_iou, B.elementwise_giou, B.elementwise_diou, B.elementwise_ciou])
def test_losses_are_differentiable(fn):
    a = _random_boxes(6, "cpu", 5).double().requires_grad_()
    b = _random_boxes(6, "cpu", 6).double()
    # CIoU treats alpha as a constant (as the paper), so compare autograd with finite differences of a
    # function that does the same: gradcheck on the whole op is only valid for the other three.
    if fn is not B.elementwise_ciou:
        assert torch.autograd.gradcheck(lambda x: fn(x, b), (a,))
    (1 - fn(a, b)).sum().backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
