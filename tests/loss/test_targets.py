"""Target encoding: hand-computed YOLOv1 grid labels and YOLOv2/v3 anchor matching."""

import math

import torch

from yolokit.loss import assign_anchors, encode_grid
from yolokit.ops.boxes import shape_iou

TINY_ANCHORS = torch.tensor([[10, 14], [23, 27], [37, 58], [81, 82], [135, 169], [344, 319]], dtype=torch.float32)


def test_encode_grid_hand_computed():
    # 448x448 input, S=7 -> 64-pixel cells. Box centre (200, 100) -> cell (gi=3, gj=1), offset (8/64, 36/64).
    t = torch.tensor([[1, 2, 150.0, 50.0, 250.0, 150.0]])
    g = encode_grid(t, batch_size=2, grid=7, num_boxes=2, num_classes=3, img_size=(448, 448))
    assert g.shape == (2, 7, 7, 2 * 5 + 3)
    assert g[0].abs().sum() == 0  # image 0 has no objects
    cell = g[1, 1, 3]
    expected_box = [8 / 64, 36 / 64, math.sqrt(100 / 448), math.sqrt(100 / 448), 1.0]
    torch.testing.assert_close(cell[:5], torch.tensor(expected_box))
    torch.testing.assert_close(cell[5:10], torch.tensor(expected_box))  # both predictors get the label
    torch.testing.assert_close(cell[10:], torch.tensor([0.0, 0.0, 1.0]))
    assert g[1].sum(dim=(0, 1))[4] == 1  # exactly one cell has P = 1


def test_encode_grid_one_object_per_cell_last_wins():
    t = torch.tensor([[0, 0, 10.0, 10.0, 30.0, 30.0], [0, 1, 12.0, 12.0, 40.0, 40.0]])
    g = encode_grid(t, 1, 7, 1, 2, (448, 448))
    assert g[0, 0, 0, 4] == 1
    torch.testing.assert_close(g[0, 0, 0, 5:], torch.tensor([0.0, 1.0]))  # class of the second truth
    assert g[..., 4].sum() == 1


def test_encode_grid_empty():
    g = encode_grid(torch.zeros((0, 6)), 3, 7, 2, 20, (448, 448))
    assert g.shape == (3, 7, 7, 30) and g.abs().sum() == 0


def test_shape_iou_hand_computed():
    iou = shape_iou(torch.tensor([[10.0, 10.0]]), torch.tensor([[20.0, 20.0], [10.0, 10.0], [5.0, 20.0]]))
    # 100/400; identical; 5x10 overlap = 50 over 100 + 100 - 50
    torch.testing.assert_close(iou, torch.tensor([[0.25, 1.0, 50 / 150]]))


def test_assign_anchors_picks_best_shape_across_scales():
    # yolov3-tiny: head 0 (stride 32) has anchors 3,4,5; head 1 (stride 16) has anchors 0,1,2.
    anchors = [TINY_ANCHORS[3:], TINY_ANCHORS[:3]]
    # a 36x60 box (best: anchor 2 = 37x58, head 1) and a 130x170 box (best: anchor 4, head 0)
    t = torch.tensor([[0, 5, 100.0, 100.0, 136.0, 160.0], [1, 7, 0.0, 0.0, 130.0, 170.0]])
    asg = assign_anchors(t, anchors, [32, 16], [(13, 13), (26, 26)], groups=[0, 0])
    assert asg[0].b.tolist() == [1] and asg[0].a.tolist() == [1] and asg[0].cls.tolist() == [7]
    assert (asg[0].gi.item(), asg[0].gj.item()) == (65 // 32, 85 // 32)
    assert asg[1].b.tolist() == [0] and asg[1].a.tolist() == [2]
    assert (asg[1].gi.item(), asg[1].gj.item()) == (118 // 16, 130 // 16)


def test_assign_anchors_iou_thresh_adds_anchors_and_groups_are_separate():
    anchors = [TINY_ANCHORS[3:], TINY_ANCHORS[:3]]
    t = torch.tensor([[0, 0, 0.0, 0.0, 30.0, 40.0]])
    one = assign_anchors(t, anchors, [32, 16], [(13, 13), (26, 26)], groups=[0, 0])
    assert sum(len(a.b) for a in one) == 1
    many = assign_anchors(t, anchors, [32, 16], [(13, 13), (26, 26)], groups=[0, 0], iou_thresh=0.3)
    ious = shape_iou(torch.tensor([[30.0, 40.0]]), TINY_ANCHORS)[0]
    assert sum(len(a.b) for a in many) == int((ious > 0.3).sum())
    # separate groups: each head gets its own best anchor
    sep = assign_anchors(t, anchors, [32, 16], [(13, 13), (26, 26)], groups=[1, 2])
    assert len(sep[0].b) == 1 and len(sep[1].b) == 1


def test_assign_anchors_empty():
    asg = assign_anchors(torch.zeros((0, 6)), [TINY_ANCHORS[:3]], [32], [(13, 13)], [0])
    assert len(asg) == 1 and asg[0].b.numel() == 0
