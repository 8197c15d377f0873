"""Torch modules for Darknet's layers, each reproducing Darknet's arithmetic (cited where it is not obvious).

Modules take plain keyword arguments; reading the cfg is :mod:`yolokit.models.darknet`'s job.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Darknet's batch-norm epsilon at inference: pjreddie's darknet divides by ``sqrt(var) + 1e-6`` and OpenCV's
#: importer uses ``sqrt(var + 1e-6)``; the two agree to ~1e-7 relative for every real variance.
BN_EPS = 1e-6


class Mish(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.mish(x)


class Ramp(nn.Module):
    """Darknet's ``ramp``: ``x * (x > 0) + 0.1 * x`` (activations.h ``ramp_activate``)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x) + 0.1 * x


def activation(name: str) -> nn.Module:
    """Darknet activation by name. ``leaky`` is Darknet's 0.1 slope.

    ``leaky`` and ``relu`` work in place: every layer applies its activation to a tensor it has just made (a
    convolution's or BatchNorm's output, a sum, a product), never to its input, and their gradients need only
    the output. That saves a pass over memory: a bf16 yolov3-tiny training step on the CPU measured 5-10% faster."""
    table = {
        "linear": nn.Identity, "leaky": lambda: nn.LeakyReLU(0.1, inplace=True), "relu": lambda: nn.ReLU(inplace=True),
        "logistic": nn.Sigmoid,
        "mish": Mish, "swish": nn.SiLU, "tanh": nn.Tanh, "elu": nn.ELU, "relu6": nn.ReLU6, "ramp": Ramp,
    }
    if name not in table:
        raise KeyError(name)
    return table[name]()


ACTIVATIONS = ("linear", "leaky", "relu", "logistic", "mish", "swish", "tanh", "elu", "relu6", "ramp")


class ConvBlock(nn.Sequential):
    """``[convolutional]``: conv (bias only without BN), optional batch-norm, activation.

    Parameter names (``conv``, ``bn``) are what the .weights reader fills: Darknet's ``biases`` become the
    conv bias (no BN) or the BN shift ``bn.bias`` (with BN), ``scales`` become ``bn.weight``.
    """

    def __init__(self, in_channels: int, filters: int, size: int, stride: tuple[int, int], padding: int,
                 groups: int, dilation: int, batch_normalize: bool, act: str):
        layers = [("conv", nn.Conv2d(in_channels, filters, size, stride, padding, dilation, groups,
                                     bias=not batch_normalize))]
        if batch_normalize:
            layers.append(("bn", nn.BatchNorm2d(filters, eps=BN_EPS, momentum=0.01)))
        if act != "linear":
            layers.append(("act", activation(act)))
        super().__init__(OrderedDict(layers))


class MaxPool(nn.Module):
    """``[maxpool]`` with Darknet's padding: ``padding`` (default ``size-1``) split as ``padding//2`` on the
    left/top and the rest on the right/bottom, padded with -inf; output ``(h + padding - size)//stride + 1``.

    So ``size=2 stride=1`` keeps the spatial size by padding one pixel on the right/bottom only (yolov3-tiny's
    13x13 layer), and odd sizes pool symmetrically (the SPP blocks of Yolo-Fastest).
    """

    def __init__(self, size: int, stride: tuple[int, int], padding: int):
        super().__init__()
        self.size, self.stride, self.padding = size, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        if self.size == 1 and self.stride == (1, 1):
            return x
        h, w = x.shape[-2:]
        lo = self.padding // 2
        out_h = (h + self.padding - self.size) // self.stride[0] + 1
        out_w = (w + self.padding - self.size) // self.stride[1] + 1
        # Only the pixels the windows actually reach: the "extra" right/bottom padding may be unused.
        pad_b = max(0, (out_h - 1) * self.stride[0] + self.size - h - lo)
        pad_r = max(0, (out_w - 1) * self.stride[1] + self.size - w - lo)
        if not (lo or pad_b or pad_r):
            return F.max_pool2d(x, self.size, self.stride)
        p = max(lo, pad_b, pad_r)
        if p <= self.size // 2:
            # max_pool2d pads implicitly (with -inf) by p on every side; dropping the first p - lo outputs
            # leaves Darknet's asymmetric windows, without materialising a padded copy.
            y = F.max_pool2d(x, self.size, self.stride, padding=p)
            o_h, o_w = (p - lo) // self.stride[0], (p - lo) // self.stride[1]
            if (p - lo) % self.stride[0] == 0 and (p - lo) % self.stride[1] == 0:
                fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) \
                    else torch.contiguous_format
                return y[..., o_h:o_h + out_h, o_w:o_w + out_w].contiguous(memory_format=fmt)
        x = F.pad(x, (lo, pad_r, lo, pad_b), value=float("-inf"))
        return F.max_pool2d(x, self.size, self.stride)


class GlobalAvgPool(nn.Module):
    """``[avgpool]``: Darknet's avgpool is global, ``(B, C, H, W) -> (B, C, 1, 1)``."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


class Route(nn.Module):
    """``[route]``: concatenates the outputs of ``layers`` along channels; with ``groups``, each input is first
    split into ``groups`` channel chunks and chunk ``group_id`` is taken (CSP-style tiny models)."""

    def __init__(self, groups: int = 1, group_id: int = 0):
        super().__init__()
        self.groups, self.group_id = groups, group_id

    def forward(self, xs: list[Tensor]) -> Tensor:
        if self.groups > 1:
            xs = [x.chunk(self.groups, dim=1)[self.group_id] for x in xs]
        return xs[0] if len(xs) == 1 else torch.cat(xs, dim=1)


class Shortcut(nn.Module):
    """``[shortcut]``: ``act(x + other)`` (residual add of an earlier layer's output)."""

    def __init__(self, act: str = "linear"):
        super().__init__()
        self.act = activation(act)

    def forward(self, x: Tensor, other: Tensor) -> Tensor:
        return self.act(x + other)


class Upsample(nn.Module):
    """``[upsample]``: nearest-neighbour by an integer ``stride``, times ``scale``."""

    def __init__(self, stride: int, scale: float = 1.0):
        super().__init__()
        self.stride, self.scale = stride, scale

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=self.stride, mode="nearest") if self.stride != 1 else x
        return x * self.scale if self.scale != 1.0 else x


class Reorg(nn.Module):
    """``[reorg]`` (YOLOv2's passthrough): ``(B, C, H, W) -> (B, C*s*s, H/s, W/s)`` with Darknet's exact order.

    Darknet's ``reorg_cpu(..., forward=0)`` is not a plain space-to-depth: it reads the input buffer as if it were
    ``(C/s², H*s, W*s)`` and writes output channel ``k = off*C/s² + c`` from pixel ``(s*j + off//s, s*i + off%s)``
    of that view; the result is then read as ``(C*s², H/s, W/s)``. Pretrained YOLOv2 weights depend on this order.
    """

    def __init__(self, stride: int = 2):
        super().__init__()
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        s = self.stride
        oc = c // (s * s)
        y = x.reshape(b, oc, h, s, w, s)                      # the buffer viewed as (C/s², H*s, W*s), split
        y = y.permute(0, 3, 5, 1, 2, 4).reshape(b, c, h, w)   # channel = (dy*s + dx)*C/s² + c2
        return y.reshape(b, c * s * s, h // s, w // s)


class Connected(nn.Module):
    """``[connected]``: flatten (Darknet's C,H,W memory order = torch's), linear, optional BN, activation."""

    def __init__(self, inputs: int, outputs: int, batch_normalize: bool, act: str):
        super().__init__()
        self.linear = nn.Linear(inputs, outputs, bias=not batch_normalize)
        self.bn = nn.BatchNorm1d(outputs, eps=BN_EPS, momentum=0.01) if batch_normalize else None
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        x = self.linear(x.flatten(1))
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)


class Local(nn.Module):
    """``[local]`` (YOLOv1's locally connected layer): a convolution whose weights differ at every output
    location. ``weight`` is ``(L, filters, C*size*size)`` with L = out_h*out_w (Darknet's order: location-major,
    then a row-major ``filters x (C, ky, kx)`` matrix); ``bias`` is ``(filters, out_h, out_w)``."""

    def __init__(self, in_channels: int, in_hw: tuple[int, int], filters: int, size: int, stride: int,
                 padding: int, act: str):
        super().__init__()
        self.size, self.stride, self.padding = size, stride, padding
        self.out_hw = ((in_hw[0] + 2 * padding - size) // stride + 1, (in_hw[1] + 2 * padding - size) // stride + 1)
        locations = self.out_hw[0] * self.out_hw[1]
        k = in_channels * size * size
        self.weight = nn.Parameter(torch.empty(locations, filters, k).uniform_(-1, 1) / math.sqrt(k))
        self.bias = nn.Parameter(torch.zeros(filters, *self.out_hw))
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        cols = F.unfold(x, self.size, padding=self.padding, stride=self.stride)  # (B, C*k*k, L)
        y = torch.einsum("bkl,lfk->bfl", cols, self.weight)                       # (B, filters, L)
        y = y.reshape(x.shape[0], -1, *self.out_hw) + self.bias
        return self.act(y)


class Dropout(nn.Dropout):
    """``[dropout]``: identity at inference; scales kept units by 1/(1-p) in training, as Darknet does."""


class SharedConv(nn.Module):
    """``[convolutional] share_index=K``: layer K's weights, biases and batch-norm statistics (Darknet points the
    layer's arrays at K's, convolutional_layer.c), with this layer's own stride, padding, dilation and activation
    (TridentNet's branches differ only in dilation). It owns no parameters and has none in ``.weights``."""

    def __init__(self, source: ConvBlock, stride: tuple[int, int], padding: int, dilation: int, act: str):
        super().__init__()
        self._source = [source]  # a list: not a sub-module, so its parameters are not listed twice
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        src = self._source[0]
        conv = src.conv
        x = F.conv2d(x, conv.weight, conv.bias, self.stride, self.padding, self.dilation, conv.groups)
        if "bn" in src._modules:
            x = src.bn(x)
        return self.act(x)


class PartialShortcut(nn.Module):
    """``[shortcut]`` of layers with different shapes: Darknet (``shortcut_multilayer_cpu``) adds the earlier
    output by FLAT per-image index ``i < C_from*H_from*W_from`` of the ``C*H*W`` input. With equal H x W that
    adds the first ``min(C, C_from)`` channels and passes the rest through (CSP cfgs); with other sizes it adds
    the earlier buffer read in this layer's order (Darknet's ResNet cfgs, which OpenCV reads the same way). The
    output has the input's shape."""

    def __init__(self, act: str = "linear"):
        super().__init__()
        self.act = activation(act)

    def forward(self, x: Tensor, other: Tensor) -> Tensor:
        if x.shape[2:] == other.shape[2:]:
            k = min(x.shape[1], other.shape[1])
            y = torch.cat((x[:, :k] + other[:, :k], x[:, k:]), 1) if k < x.shape[1] else x + other[:, :k]
            return self.act(y)
        b, n = x.shape[0], x[0].numel()
        flat, add = x.reshape(b, n), other.reshape(b, -1)
        k = min(n, add.shape[1])
        y = torch.cat((flat[:, :k] + add[:, :k], flat[:, k:]), 1) if k < n else flat + add[:, :k]
        return self.act(y.reshape(x.shape))


class ScaleChannels(nn.Module):
    """``[scale_channels]`` (squeeze-excitation): multiplies an earlier layer's output ``(B, C, H, W)`` by this
    input. ``scale_wh=0``: the input holds one weight per channel ``(B, C, 1, 1)``; ``scale_wh=1``: one weight per
    pixel ``(B, 1, H, W)`` (scale_channels_layer.c). Then the activation."""

    def __init__(self, scale_wh: bool, act: str = "linear"):
        super().__init__()
        self.scale_wh = scale_wh
        self.act = activation(act)

    def forward(self, x: Tensor, other: Tensor) -> Tensor:
        if self.scale_wh:
            return self.act(x[:, :1] * other)
        return self.act(x.reshape(x.shape[0], other.shape[1], 1, 1) * other)


class Sam(nn.Module):
    """``[sam]`` (YOLOv4's spatial attention, point-wise): ``act(input * earlier output)`` (sam_layer.c)."""

    def __init__(self, act: str = "linear"):
        super().__init__()
        self.act = activation(act)

    def forward(self, x: Tensor, other: Tensor) -> Tensor:
        return self.act(x.reshape(other.shape) * other)


class Softmax(nn.Module):
    """``[softmax]``: softmax over each image's flat ``C*H*W`` values, split into ``groups`` equal chunks, of
    ``x / temperature`` (softmax_layer.c, ``softmax_cpu``). The shape is kept."""

    def __init__(self, groups: int = 1, temperature: float = 1.0):
        super().__init__()
        self.groups, self.temperature = groups, temperature

    def forward(self, x: Tensor) -> Tensor:
        y = x.reshape(x.shape[0], self.groups, -1)
        if self.temperature != 1.0:
            y = y / self.temperature
        return torch.softmax(y, -1).reshape(x.shape)


class Crop(nn.Module):
    """``[crop]`` at inference: the centred ``crop_h x crop_w`` window, scaled ``x*2 - 1`` unless ``noadjust=1``
    (crop_layer.c; training's random offsets and flips are augmentation, not part of the network)."""

    def __init__(self, crop_hw: tuple[int, int], noadjust: bool):
        super().__init__()
        self.crop_hw, self.noadjust = crop_hw, noadjust

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        dh, dw = (h - self.crop_hw[0]) // 2, (w - self.crop_hw[1]) // 2
        y = x[..., dh:dh + self.crop_hw[0], dw:dw + self.crop_hw[1]]
        return y if self.noadjust else y * 2 - 1


class LocalAvgPool(nn.Module):
    """``[local_avgpool]``: average pooling with Darknet's maxpool geometry (``padding`` default ``size-1``,
    ``padding//2`` on the left/top, output ``(h + padding - size)//stride + 1``), averaging only the pixels
    inside the image (maxpool_layer.c ``forward_local_avgpool_layer``)."""

    def __init__(self, size: int, stride: tuple[int, int], padding: int):
        super().__init__()
        self.size, self.stride, self.padding = size, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        lo = self.padding // 2
        out_h = (h + self.padding - self.size) // self.stride[0] + 1
        out_w = (w + self.padding - self.size) // self.stride[1] + 1
        pad_b = max(0, (out_h - 1) * self.stride[0] + self.size - h - lo)
        pad_r = max(0, (out_w - 1) * self.stride[1] + self.size - w - lo)
        pad = (lo, pad_r, lo, pad_b)
        total = F.avg_pool2d(F.pad(x, pad), self.size, self.stride, divisor_override=1)
        ones = F.pad(x.new_ones((1, 1, h, w)), pad)
        count = F.avg_pool2d(ones, self.size, self.stride, divisor_override=1)
        return (total / count)[..., :out_h, :out_w]


class Reorg3d(nn.Module):
    """``[reorg3d]``: space-to-depth ``(B, C, H, W) -> (B, C*s*s, H/s, W/s)`` where output channel
    ``(dy*s + dx)*C + c`` holds input pixel ``(s*j + dy, s*i + dx)`` of channel ``c`` (reorg_layer.c with
    ``reorg_cpu(..., forward=0)`` called with the OUTPUT's sizes, unlike the old ``[reorg]``)."""

    def __init__(self, stride: int = 2):
        super().__init__()
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        s = self.stride
        y = x.reshape(b, c, h // s, s, w // s, s).permute(0, 3, 5, 1, 2, 4)  # (B, dy, dx, C, H/s, W/s)
        return y.reshape(b, s * s * c, h // s, w // s)


class Identity(nn.Module):
    """``[cost]`` (a training loss; identity at inference)."""

    def forward(self, x: Tensor) -> Tensor:
        return x
