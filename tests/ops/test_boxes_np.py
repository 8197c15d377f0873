"""The NumPy box twin: hand-computed cases, a loop, empty inputs, zero unions, and the torch functions' numbers."""

import numpy as np
import pytest
import torch

from yolokit.ops import boxes as T
from yolokit.ops import boxes_np as N
from yolokit.ops.boxes_np import box_iou, shape_iou


def test_box_iou_hand_computed():
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]], dtype=float)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], dtype=float)
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    assert np.isclose(iou[0, 0], 50 / 150)          # half overlap: 50 / (100 + 100 - 50)
    assert iou[0, 1] == 0 and iou[0, 2] == 1
    assert np.isclose(iou[1, 2], 4 / 100)
    assert box_iou(a, np.empty((0, 4))).shape == (2, 0)


def test_box_iou_matches_a_loop():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (7, 2))
    a = np.concatenate((xy, xy + rng.uniform(1, 30, (7, 2))), 1)
    xy = rng.uniform(0, 50, (5, 2))
    b = np.concatenate((xy, xy + rng.uniform(1, 30, (5, 2))), 1)

    def one(p, q):
        w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
        h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
        union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - w * h
        return w * h / union

    loop = np.array([[one(p, q) for q in b] for p in a])
    assert np.allclose(box_iou(a, b), loop)


def test_shape_iou_hand_computed():
    iou = shape_iou(np.array([[2.0, 2.0], [4.0, 1.0]]), np.array([[4.0, 1.0], [2.0, 2.0], [1.0, 1.0]]))
    # (2,2) vs (4,1): inter 2*1 = 2, union 4 + 4 - 2 = 6
    np.testing.assert_allclose(iou, [[1 / 3, 1, 1 / 4], [1, 1 / 3, 1 / 4]])


def test_zero_union_is_zero_not_nan():
    # two empty boxes (a HOG window collapsed to a point, a zero-size annotation): no division by zero
    p = np.array([[3.0, 3.0, 3.0, 3.0]])
    assert box_iou(p, p).tolist() == [[0.0]]
    assert N.elementwise_iou(p, p).tolist() == [0.0]
    assert shape_iou(np.zeros((1, 2)), np.zeros((1, 2))).tolist() == [[0.0]]


def test_elementwise_hand_computed_and_checked():
    a = np.array([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 10.0, 10.0]])
    b = np.array([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 10.0, 10.0]])
    np.testing.assert_allclose(N.elementwise_iou(a, b), [1 / 7, 1.0])  # 1 / (4 + 4 - 1); identical boxes
    with pytest.raises(ValueError):
        N.elementwise_iou(a, b[:1])


def test_conversions_hand_computed_and_round_trip():
    xyxy = np.array([[10.0, 20.0, 40.0, 60.0]])
    np.testing.assert_allclose(N.xyxy_to_xywh(xyxy), [[10, 20, 30, 40]])
    np.testing.assert_allclose(N.xyxy_to_cxcywh(xyxy), [[25, 40, 30, 40]])
    np.testing.assert_allclose(N.xywh_to_xyxy(N.xyxy_to_xywh(xyxy)), xyxy)
    np.testing.assert_allclose(N.cxcywh_to_xyxy(N.xyxy_to_cxcywh(xyxy)), xyxy)
    np.testing.assert_allclose(N.area(np.array([[0.0, 0.0, 2.0, 3.0], [5.0, 5.0, 4.0, 6.0]])), [6.0, 0.0])


def _boxes(rng, n):
    xy = rng.uniform(0, 100, (n, 2))
    return np.concatenate((xy, xy + rng.uniform(1, 50, (n, 2))), 1)


@pytest.mark.parametrize("name", ["xyxy_to_xywh", "xywh_to_xyxy", "xyxy_to_cxcywh", "cxcywh_to_xyxy", "area"])
def test_numpy_twin_matches_torch_conversions(name):
    x = _boxes(np.random.default_rng(2), 9)
    np.testing.assert_allclose(getattr(N, name)(x), getattr(T, name)(torch.from_numpy(x)).numpy(), rtol=1e-12)


def test_numpy_twin_matches_torch_iou():
    rng = np.random.default_rng(3)
    a, b = _boxes(rng, 13), _boxes(rng, 7)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    np.testing.assert_allclose(N.box_iou(a, b), T.box_iou(ta, tb).numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(N.elementwise_iou(a[:7], b), T.elementwise_iou(ta[:7], tb).numpy(), rtol=1e-6,
                               atol=1e-9)
    wh, anchors = rng.uniform(1, 60, (11, 2)), rng.uniform(1, 60, (5, 2))
    np.testing.assert_allclose(N.shape_iou(wh, anchors),
                               T.shape_iou(torch.from_numpy(wh), torch.from_numpy(anchors)).numpy(), rtol=1e-6)
