"""Letterbox: hand-computed geometry and the round trip of boxes."""

import numpy as np
import pytest
import torch

from yolokit.ops.letterbox import letterbox, letterbox_boxes, unletterbox_boxes


def test_letterbox_wide_image_hand_computed():
    image = np.full((200, 400, 3), 7, np.uint8)
    out, scale, pad = letterbox(image, 416)
    assert out.shape == (416, 416, 3) and out.dtype == np.uint8
    assert scale == 416 / 400 and pad == (0, (416 - 208) // 2)  # 200 * 1.04 = 208 rows, centred
    assert (out[:104] == 128).all() and (out[104 + 208:] == 128).all()  # Darknet 0.5 grey
    assert (out[104:312] == 7).all()


def test_letterbox_rectangular_target_and_float_image():
    image = np.zeros((100, 50, 3), np.float32)
    out, scale, pad = letterbox(image, (320, 640))
    assert out.shape == (320, 640, 3) and scale == 3.2 and pad == ((640 - 160) // 2, 0)
    assert out[0, 0, 0] == np.float32(0.5)


def test_boxes_round_trip_numpy_and_torch():
    boxes = np.array([[10, 20, 110, 220], [0, 0, 640, 480]], np.float32)
    _, scale, pad = letterbox(np.zeros((480, 640, 3), np.uint8), 416)
    fwd = letterbox_boxes(boxes, scale, pad)
    np.testing.assert_allclose(fwd[1], [0, pad[1], 416, pad[1] + 480 * scale], atol=1e-4)
    np.testing.assert_allclose(unletterbox_boxes(fwd, scale, pad), boxes, atol=1e-4)
    det = torch.tensor([[*fwd[0].tolist(), 0.9, 3.0]])
    back = unletterbox_boxes(det, scale, pad, orig_size=(480, 640))
    torch.testing.assert_close(back[0, :4], torch.from_numpy(boxes[0]), atol=1e-4, rtol=0)
    assert back[0, 4].item() == pytest.approx(0.9) and back[0, 5].item() == 3.0
    outside = unletterbox_boxes(torch.tensor([[-50.0, 0, 500, 416]]), scale, pad, orig_size=(480, 640))
    assert outside[0, 0] == 0 and outside[0, 2] == 640 and outside[0, 1] == 0 and outside[0, 3] == 480
