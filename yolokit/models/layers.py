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


def activation(name: str) -> nn.Module:
    """Darknet activation by name. ``leaky`` is Darknet's 0.1 slope."""
    table = {
        "linear": nn.Identity, "leaky": lambda: nn.LeakyReLU(0.1), "relu": nn.ReLU, "logistic": nn.Sigmoid,
        "mish": Mish, "swish": nn.SiLU, "tanh": nn.Tanh, "elu": nn.ELU, "relu6": nn.ReLU6,
    }
    if name not in table:
        raise KeyError(name)
    return table[name]()


ACTIVATIONS = ("linear", "leaky", "relu", "logistic", "mish", "swish", "tanh", "elu", "relu6")


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
