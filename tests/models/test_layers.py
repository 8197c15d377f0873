"""Darknet layer arithmetic on tiny hand-computed inputs and against loop re-implementations of Darknet's C."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from yolokit.models import layers as L
from yolokit.models.heads import DetectionHead, RegionHead, YoloHead
from yolokit.models.fastpath import fold_batchnorm


def test_maxpool_size2_stride1_pads_right_and_bottom_only():
    x = torch.tensor([[1.0, 5.0], [3.0, -2.0]]).view(1, 1, 2, 2)
    y = L.MaxPool(2, (1, 1), padding=1)(x)
    # windows at (0,0)=[1,5,3,-2], (0,1)=[5,-2], (1,0)=[3,-2], (1,1)=[-2]; padding never wins (-inf)
    assert y.view(-1).tolist() == [5.0, 5.0, 3.0, -2.0]


def test_maxpool_keeps_darknet_output_size_on_odd_input():
    x = torch.arange(25.0).view(1, 1, 5, 5)
    y = L.MaxPool(2, (2, 2), padding=1)(x)            # Darknet: (5 + 1 - 2)//2 + 1 = 3, torch's floor mode gives 2
    assert y.shape[-2:] == (3, 3)
    assert y[0, 0, 2, 2].item() == 24.0 and y[0, 0, 0, 0].item() == 6.0


def test_maxpool_odd_size_is_symmetric():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 0, 0] = 1.0
    y = L.MaxPool(3, (1, 1), padding=2)(x)
    assert y[0, 0, :2, :2].eq(1).all() and y[0, 0, 2:].eq(0).all()


def reorg_darknet(x: np.ndarray, stride: int) -> np.ndarray:
    """Literal port of Darknet's reorg_cpu(forward=0) on a (c, h, w) buffer, output read as (c*s*s, h/s, w/s)."""
    c, h, w = x.shape
    flat_in, out = x.reshape(-1), np.zeros(x.size, x.dtype)
    out_c = c // (stride * stride)
    for k in range(c):
        for j in range(h):
            for i in range(w):
                in_index = i + w * (j + h * k)
                c2, offset = k % out_c, k // out_c
                w2, h2 = i * stride + offset % stride, j * stride + offset // stride
                out_index = w2 + w * stride * (h2 + h * stride * c2)
                out[in_index] = flat_in[out_index]
    return out.reshape(c * stride * stride, h // stride, w // stride)


def test_reorg_matches_darknet_loop():
    x = torch.randn(8, 4, 6)
    expected = reorg_darknet(x.numpy(), 2)
    got = L.Reorg(2)(x[None])[0].numpy()
    np.testing.assert_array_equal(got, expected)


def test_route_groups_and_concat():
    a, b = torch.randn(1, 4, 3, 3), torch.randn(1, 2, 3, 3)
    assert torch.equal(L.Route()([a, b]), torch.cat([a, b], 1))
    assert torch.equal(L.Route(2, 1)([a]), a[:, 2:])


def test_local_matches_loop():
    torch.manual_seed(0)
    layer = L.Local(2, (4, 4), filters=3, size=3, stride=1, padding=1, act="linear")
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(1, 2, 4, 4)
    xp = torch.nn.functional.pad(x, (1, 1, 1, 1))
    expected = torch.zeros(1, 3, 4, 4)
    for r in range(4):
        for c in range(4):
            patch = xp[0, :, r:r + 3, c:c + 3].reshape(-1)          # Darknet im2col order (c, ky, kx)
            expected[0, :, r, c] = layer.weight[r * 4 + c] @ patch + layer.bias[:, r, c]
    torch.testing.assert_close(layer(x), expected)


def test_fold_batchnorm_is_equivalent():
    torch.manual_seed(0)
    block = L.ConvBlock(3, 4, 3, (1, 1), 1, 1, 1, True, "leaky").eval()
    with torch.no_grad():
        block.bn.running_mean.normal_()
        block.bn.running_var.uniform_(0.5, 2)
        block.bn.weight.normal_()
        block.bn.bias.normal_()
    x = torch.randn(2, 3, 8, 8)
    before = block(x)
    fold_batchnorm(block)
    assert "bn" not in block._modules
    torch.testing.assert_close(block(x), before, rtol=1e-5, atol=1e-5)


def test_yolo_head_decoding_by_hand():
    head = YoloHead([(10.0, 20.0)], num_classes=1, scale_x_y=2.0).eval()
    raw = torch.zeros(1, 6, 2, 2)                   # A=1, 5+C=6, grid 2x2
    raw[0, 0, 1, 0] = 30.0                          # tx at row 1, col 0 -> sigmoid ~ 1
    raw[0, 2, 1, 0] = float(np.log(2.0))            # tw -> w = 2 * 10
    out = head(raw, (64, 64))                       # stride 32
    assert out.shape == (1, 4, 6)
    row = out[0, 2]                                 # row-major: (anchor 0, row 1, col 0)
    # cx = (0 + 1*2 - 0.5) * 32 = 48; cy = (1 + 0.5*2 - 0.5) * 32 = 48
    torch.testing.assert_close(row[:4], torch.tensor([48.0, 48.0, 20.0, 20.0]))
    torch.testing.assert_close(row[4:], torch.tensor([0.5, 0.5]))
    head.train()
    assert head(raw, (64, 64)).shape == (1, 1, 2, 2, 6)


def test_region_head_anchors_in_cells_and_softmax():
    head = RegionHead([(1.5, 2.0)], num_classes=2).eval()
    head.softmax = True
    raw = torch.zeros(1, 7, 1, 1)
    raw[0, 5] = np.log(3.0)                         # class logits log3, 0 -> softmax 0.75, 0.25
    out = head(raw, (32, 32))[0, 0]
    torch.testing.assert_close(out, torch.tensor([16.0, 16.0, 48.0, 64.0, 0.5, 0.75, 0.25]))


def test_detection_head_layout():
    s, nb, c = 2, 2, 3
    head = DetectionHead(s, nb, c, sqrt=True).eval()
    flat = torch.zeros(1, s * s * (nb * 5 + c))
    cell = 3                                        # row 1, col 1
    flat[0, cell * c + 1] = 0.9                     # class 1 of that cell
    flat[0, s * s * c + cell * nb + 1] = 0.7        # conf of box 1
    coords = s * s * (c + nb) + (cell * nb + 1) * 4
    flat[0, coords:coords + 4] = torch.tensor([0.5, 0.25, 0.5, 0.4])
    raw = head.raw(flat)
    assert raw.shape == (1, s, s, nb * 5 + c)
    torch.testing.assert_close(raw[0, 1, 1, 5:10], torch.tensor([0.5, 0.25, 0.5, 0.4, 0.7]))
    out = head(flat, (100, 200))                    # input h=100, w=200
    row = out[0, cell * nb + 1]
    # cx = (1 + .5)/2*200 = 150, cy = (1 + .25)/2*100 = 62.5, w = .25*200, h = .16*100
    torch.testing.assert_close(row, torch.tensor([150.0, 62.5, 50.0, 16.0, 0.7, 0.0, 0.9, 0.0]))


def test_avgpool_upsample_shortcut_by_hand():
    x = torch.tensor([[1.0, 2.0], [3.0, 6.0]]).view(1, 1, 2, 2)
    assert L.GlobalAvgPool()(x).item() == 3.0
    up = L.Upsample(2)(x)
    assert up.shape == (1, 1, 4, 4) and up[0, 0, 3].tolist() == [3.0, 3.0, 6.0, 6.0]
    assert L.Upsample(1, scale=0.5)(x).view(-1).tolist() == [0.5, 1.0, 1.5, 3.0]
    assert L.Shortcut("leaky")(x, -2 * x).view(-1).tolist() == pytest.approx([-0.1, -0.2, -0.3, -0.6])


def test_activations_follow_darknet():
    x = torch.tensor([-2.0, 0.0, 3.0])
    assert L.activation("leaky")(x).tolist() == pytest.approx([-0.2, 0.0, 3.0])       # Darknet's slope 0.1
    assert L.activation("mish")(x).tolist() == pytest.approx((x * torch.tanh(F.softplus(x))).tolist())
    assert L.activation("logistic")(x).tolist() == pytest.approx(torch.sigmoid(x).tolist())
    with pytest.raises(KeyError):
        L.activation("gelu")


def test_builder_shapes_for_groups_and_route_groups():
    from yolokit.models import DarknetModel

    cfg = """[net]
width=32
height=32
channels=3
[convolutional]
filters=8
size=3
stride=2
pad=1
batch_normalize=1
activation=mish
[convolutional]
filters=8
size=3
groups=8
pad=1
activation=relu
[route]
layers=-1
groups=2
group_id=1
[avgpool]
[connected]
output=14
activation=linear
[detection]
classes=4
side=1
num=2
"""
    model = DarknetModel(cfg, "g.cfg")
    assert [i.out_shape for i in model.infos[:4]] == [(8, 16, 16), (8, 16, 16), (4, 16, 16), (4, 1, 1)]
    assert model.layers[1].conv.weight.shape == (8, 1, 3, 3)                           # depthwise
    assert model.infos[1].flops == 2 * 8 * 1 * 9 * 16 * 16
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(model.layers[2]([model.layers[1](model.layers[0](x))])[:, :],
                               model.layers[1](model.layers[0](x))[:, 4:])
    assert model.eval()(x).shape == (2, 2, 9)
