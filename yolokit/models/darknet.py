"""Darknet networks in torch: build a :class:`DarknetModel` from cfg text, read and write ``.weights`` files.

``.weights`` format (Darknet ``load_weights``/``save_weights``): int32 ``major, minor, revision``, then ``seen``
(images seen in training) as int64 when ``major*10 + minor >= 2`` (and both < 1000) else int32, then float32
values layer by layer in cfg order:

* ``[convolutional]``: biases[n]; with batch_normalize: scales[n], rolling_mean[n], rolling_variance[n];
  then weights[n * c/groups * size * size].
* ``[connected]``: biases[out], weights[out * in]; with batch_normalize: scales, rolling_mean, rolling_variance.
* ``[local]``: biases[out_h*out_w*n], weights[out_h*out_w * n * c*size*size].

* ``[batchnorm]``: biases[c], scales[c], rolling_mean[c], rolling_variance[c].
* ``[convolutional] share_index=K``: nothing (the layer uses layer K's arrays).

Nothing else carries weights. The reader must consume the file exactly; the writer reproduces the header it read,
so load -> save gives a byte-identical file.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from yolokit.errors import ConfigError, WeightsError
from yolokit.fileio import write_atomic
from yolokit.models import layers as L
from yolokit.models.base import Detector
from yolokit.models.cfg import Section, format_cfg, parse_cfg
from yolokit.models.heads import DetectionHead, GaussianYoloHead, HeadSpec, RegionHead, YoloHead, nms_beta_of

HEAD_KINDS = ("yolo", "region", "detection", "gaussian_yolo")


@dataclass
class LayerInfo:
    """One row of the layer summary: what ``yolokit info`` prints and what the weights reader walks."""

    index: int
    kind: str
    line: int
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    refs: tuple[int, ...]
    detail: str
    flops: float  # Darknet's convention: 2 x multiply-accumulates of conv/connected/local layers


def _pad_for(sec: Section, size: int) -> int:
    # Darknet: ``pad=1`` is a flag meaning size/2; otherwise the explicit ``padding=`` (default 0).
    return size // 2 if sec.get_int("pad", 0) else sec.get_int("padding", 0)


def _strides(sec: Section, default: int) -> tuple[int, int]:
    s = sec.get_int("stride", default)
    return sec.get_int("stride_y", s), sec.get_int("stride_x", s)


def _act(sec: Section, default: str = "logistic") -> str:
    name = sec.get_str("activation", default).lower()
    if name not in L.ACTIVATIONS:
        raise sec.error("activation", f"unknown activation '{name}' (yolokit knows: {', '.join(L.ACTIVATIONS)})")
    return name


def _ref(sec: Section, key: str, value: int, index: int) -> int:
    j = index + value if value < 0 else value
    if not 0 <= j < index:
        raise sec.error(key, f"'{key}' refers to layer {value} -> {j}, which is not an earlier layer "
                             f"(this is layer {index})")
    return j


def _anchors(sec: Section) -> list[tuple[float, float]]:
    vals = sec.get_floats("anchors")
    if len(vals) % 2:
        raise sec.error("anchors", f"'anchors' needs pairs of numbers, got {len(vals)} values")
    return [(vals[i], vals[i + 1]) for i in range(0, len(vals), 2)]


#: What a cfg may ask for at its [net] size, batch 1, float32: parameters plus every layer's output. A cfg over it is
#: refused before anything is allocated (``filters=1000000000``, ``width=1000000``, ``[upsample] stride=100000``).
#: YOLOv1 (270M parameters) needs ~1.1 GB, yolov4-p6 at 1280 ~3 GB.
MEMORY_BUDGET_BYTES = 16 * 2**30


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.3g} GB"


def build_layers(sections: list[Section], require_head: bool = True):
    """Walk the cfg with Darknet's shape arithmetic; returns ``(modules, infos, heads)``.

    Shapes are ``(C, H, W)`` at the cfg's ``[net]`` size; a shape that cannot work (a route of different
    sizes, a head whose input has the wrong channel count) is a ConfigError naming the line. Shapes, parameter
    counts and output sizes are all computed first and checked against :data:`MEMORY_BUDGET_BYTES`; modules are
    built only after that check. ``require_head=False`` builds a cfg without a detection layer (a classifier
    backbone).
    """
    net = sections[0]
    c, h, w = net.get_int("channels", 3), net.get_int("height", 416), net.get_int("width", 416)
    if min(c, h, w) <= 0:
        raise net.error(None, f"needs positive channels/height/width, got {c}/{h}/{w}")
    shapes: list[tuple[int, int, int]] = []
    makers: list = []  # one per layer: a function of the modules built so far -> this layer's module
    infos: list[LayerInfo] = []
    heads: list[HeadSpec] = []
    shape, net_hw = (c, h, w), (h, w)
    n_params, n_values, biggest = 0, c * h * w, (0, 0)
    for index, sec in enumerate(sections[1:]):
        c, h, w = shape
        refs: tuple[int, ...] = ()
        flops, params = 0.0, 0
        k = sec.kind
        if k == "convolutional":
            n, size = sec.get_int("filters", 1), sec.get_int("size", 1)
            stride, groups, dil = _strides(sec, 1), sec.get_int("groups", 1), sec.get_int("dilation", 1)
            pad, act, bn = _pad_for(sec, size), _act(sec), bool(sec.get_int("batch_normalize", 0))
            # Darknet ignores dilation for 1x1 kernels and pads by pad*dilation (convolutional_layer.c's
            # im2col_cpu_ext call), so a dilated 3x3 with pad=1 keeps the size, as TridentNet's branches need.
            if size == 1:
                dil = 1
            pad *= dil
            if groups < 1 or c % groups or n % groups:
                raise sec.error("groups", f"groups={groups} must divide input channels {c} and filters {n}")
            oh = (h + 2 * pad - dil * (size - 1) - 1) // stride[0] + 1
            ow = (w + 2 * pad - dil * (size - 1) - 1) // stride[1] + 1
            if oh <= 0 or ow <= 0:
                raise sec.error(None, f"input {h}x{w} too small for size={size} stride={stride}")
            out = (n, oh, ow)
            flops = 2.0 * n * (c // groups) * size * size * oh * ow
            st = f"{stride[0]}" if stride[0] == stride[1] else f"{stride[0]}x{stride[1]}"
            detail = f"{n:5d} {size}x{size}/{st}" + (f" g{groups}" if groups > 1 else "") + (" bn" if bn else "") \
                + f" {act}"
            if sec.has("share_index"):
                # Darknet: share_index >= 0 is a layer number, a negative one is relative to this layer.
                si = sec.get_int("share_index")
                j = si if si >= 0 else index + si
                if not 0 <= j < index or infos[j].kind != "convolutional" or infos[j].refs:
                    raise sec.error("share_index", f"share_index={si} -> layer {j} is not an earlier "
                                                   "[convolutional] with its own weights")
                src = sections[j + 1]
                if (src.get_int("filters", 1), src.get_int("size", 1), src.get_int("groups", 1),
                        infos[j].in_shape[0], bool(src.get_int("batch_normalize", 0))) != (n, size, groups, c, bn):
                    raise sec.error("share_index", f"layer {j} has other filters/size/groups/channels/batch_normalize "
                                                   "than this layer, so its weights cannot be shared")
                refs = (j,)
                detail += f" shares {j}"
                makers.append(lambda built, j=j, stride=stride, pad=pad, dil=dil, act=act:
                              L.SharedConv(built[j], stride, pad, dil, act))
            else:
                params = n * (c // groups) * size * size + (4 * n if bn else n)
                makers.append(lambda built, c=c, n=n, size=size, stride=stride, pad=pad, groups=groups, dil=dil,
                              bn=bn, act=act: L.ConvBlock(c, n, size, stride, pad, groups, dil, bn, act))
        elif k in ("maxpool", "local_avgpool"):
            stride = _strides(sec, 1)
            size = sec.get_int("size", stride[0])
            padding = sec.get_int("padding", size - 1)
            oh, ow = (h + padding - size) // stride[0] + 1, (w + padding - size) // stride[1] + 1
            if oh <= 0 or ow <= 0:
                raise sec.error(None, f"input {h}x{w} too small for size={size} stride={stride}")
            cls = L.MaxPool if k == "maxpool" else L.LocalAvgPool
            makers.append(lambda built, cls=cls, size=size, stride=stride, padding=padding: cls(size, stride, padding))
            out = (c, oh, ow)
            detail = f"      {size}x{size}/{stride[0]}" + (" avg" if k == "local_avgpool" else "")
        elif k == "avgpool":
            makers.append(lambda built: L.GlobalAvgPool())
            out, detail = (c, 1, 1), "      global"
        elif k == "route":
            refs = tuple(_ref(sec, "layers", v, index) for v in sec.get_ints("layers"))
            if not refs:
                raise sec.error("layers", "needs at least one layer")
            groups, gid = sec.get_int("groups", 1), sec.get_int("group_id", 0)
            if not 0 <= gid < groups:
                raise sec.error("group_id", f"group_id={gid} must be in [0, groups={groups})")
            srcs = [shapes[j] for j in refs]
            if any(s[1:] != srcs[0][1:] for s in srcs):
                raise sec.error("layers", f"routed layers {list(refs)} have different sizes "
                                          f"{[s[1:] for s in srcs]}")
            if any(s[0] % groups for s in srcs):
                raise sec.error("groups", f"groups={groups} must divide the channels {[s[0] for s in srcs]}")
            makers.append(lambda built, groups=groups, gid=gid: L.Route(groups, gid))
            out = (sum(s[0] // groups for s in srcs), srcs[0][1], srcs[0][2])
            detail = "      " + ",".join(str(j) for j in refs) + (f" group {gid}/{groups}" if groups > 1 else "")
        elif k == "shortcut":
            refs = (_ref(sec, "from", sec.get_int("from"), index),)
            other = shapes[refs[0]]
            act = _act(sec, "linear")
            cls = L.Shortcut if other == shape else L.PartialShortcut
            makers.append(lambda built, cls=cls, act=act: cls(act))
            out, detail = shape, f"      from {refs[0]} {act}" + (f" ({other[0]}ch)" if other != shape else "")
        elif k in ("scale_channels", "sam"):
            refs = (_ref(sec, "from", sec.get_int("from"), index),)
            other = shapes[refs[0]]
            act = _act(sec, "linear")
            if k == "sam":
                ok = other == shape
                want = f"the same shape as layer {refs[0]} {other}"
                makers.append(lambda built, act=act: L.Sam(act))
            elif sec.get_int("scale_wh", 0):
                ok = shape[1:] == other[1:]
                want = f"one channel of layer {refs[0]}'s size {other[1:]}"
                makers.append(lambda built, act=act: L.ScaleChannels(True, act))
            else:
                ok = c * h * w == other[0]
                want = f"one value per channel of layer {refs[0]} ({other[0]})"
                makers.append(lambda built, act=act: L.ScaleChannels(False, act))
            if not ok:
                raise sec.error("from", f"input {shape} must have {want}")
            out, detail = other, f"      x layer {refs[0]} {act}"
        elif k == "upsample":
            stride, scale = sec.get_int("stride", 2), sec.get_float("scale", 1.0)
            makers.append(lambda built, stride=stride, scale=scale: L.Upsample(stride, scale))
            out, detail = (c, h * stride, w * stride), f"      x{stride}"
        elif k == "dropout":
            p = sec.get_float("probability", 0.5)
            if not 0 <= p < 1:
                raise sec.error("probability", f"probability={p} must be in [0, 1)")
            makers.append(lambda built, p=p: L.Dropout(p))
            out, detail = shape, f"      p={p:g}"
        elif k == "connected":
            n, act, bn = sec.get_int("output", 1), _act(sec), bool(sec.get_int("batch_normalize", 0))
            params = c * h * w * n + (4 * n if bn else n)
            makers.append(lambda built, i=c * h * w, n=n, bn=bn, act=act: L.Connected(i, n, bn, act))
            out = (n, 1, 1)
            flops = 2.0 * c * h * w * n
            detail = f"{n:5d} fc" + (" bn" if bn else "") + f" {act}"
        elif k == "local":
            n, size, stride = sec.get_int("filters", 1), sec.get_int("size", 1), sec.get_int("stride", 1)
            pad = size // 2 if sec.get_int("pad", 0) else 0
            act = _act(sec)
            oh, ow = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
            if oh <= 0 or ow <= 0:
                raise sec.error(None, f"input {h}x{w} too small for size={size} stride={stride}")
            out = (n, oh, ow)
            params = oh * ow * n * (c * size * size + 1)
            makers.append(lambda built, c=c, hw=(h, w), n=n, size=size, stride=stride, pad=pad, act=act:
                          L.Local(c, hw, n, size, stride, pad, act))
            flops = 2.0 * n * c * size * size * oh * ow
            detail = f"{n:5d} {size}x{size}/{stride} local {act}"
        elif k in ("reorg", "reorg3d"):
            s = sec.get_int("stride", 2 if k == "reorg" else 1)
            if h % s or w % s or (k == "reorg" and c % (s * s)):
                raise sec.error("stride", f"stride={s} must divide {h}x{w}" + (f" and s*s must divide {c} channels"
                                                                              if k == "reorg" else ""))
            cls = L.Reorg if k == "reorg" else L.Reorg3d
            makers.append(lambda built, cls=cls, s=s: cls(s))
            out, detail = (c * s * s, h // s, w // s), f"      /{s}"
        elif k == "batchnorm":
            params = 4 * c
            makers.append(lambda built, c=c: nn.BatchNorm2d(c, eps=L.BN_EPS, momentum=0.01))
            out, detail = shape, "      bn"
        elif k == "softmax":
            groups, temp = sec.get_int("groups", 1), sec.get_float("temperature", 1.0)
            if sec.has("tree"):
                raise sec.error("tree", "a softmax tree (YOLO9000's WordTree) is not supported by yolokit")
            if (c * h * w) % groups or temp <= 0:
                raise sec.error("groups", f"groups={groups} must divide {c * h * w} values, temperature > 0")
            makers.append(lambda built, groups=groups, temp=temp: L.Softmax(groups, temp))
            out, detail = shape, f"      groups {groups}"
        elif k == "cost":
            makers.append(lambda built: L.Identity())
            out, detail = shape, f"      {sec.get_str('type', 'sse')} (training only)"
        elif k == "crop":
            ch, cw = sec.get_int("crop_height", 1), sec.get_int("crop_width", 1)
            if ch > h or cw > w:
                raise sec.error("crop_height", f"crop {ch}x{cw} is larger than the input {h}x{w}")
            noadjust = bool(sec.get_int("noadjust", 0))
            makers.append(lambda built, hw=(ch, cw), noadjust=noadjust: L.Crop(hw, noadjust))
            out, detail = (c, ch, cw), f"      {ch}x{cw}" + ("" if noadjust else " x2-1")
        elif k in HEAD_KINDS:
            mod, spec = _build_head(sec, index, shape, net_hw)
            heads.append(spec)
            makers.append(lambda built, mod=mod: mod)
            out, detail = shape, f"      {spec.num_classes} classes, {spec.num_boxes} boxes/cell"
        else:  # parse_cfg only lets known kinds through
            raise sec.error(None, "layer kind without a builder")
        shapes.append(out)
        infos.append(LayerInfo(index, k, sec.line, shape, out, refs, detail, flops))
        n_params += params
        values = out[0] * out[1] * out[2]
        n_values += values
        biggest = max(biggest, (values + params, index))
        shape = out
    need = 4.0 * (n_params + n_values)
    if need > MEMORY_BUDGET_BYTES:
        j = biggest[1]
        raise ConfigError(f"{net.source}: this cfg needs {_gb(need)} at {net_hw[0]}x{net_hw[1]} (float32, batch 1: "
                          f"{n_params:,} parameters and {n_values:,} output values), over yolokit's budget of "
                          f"{_gb(MEMORY_BUDGET_BYTES)}; the largest is layer {j} [{infos[j].kind}] at line "
                          f"{infos[j].line}, output {infos[j].out_shape}")
    if require_head and not heads:
        raise ConfigError(f"{net.source}: no detection layer ([yolo], [region] or [detection])")
    modules: list[nn.Module] = []
    for make in makers:
        modules.append(make(modules))
    return modules, infos, heads


def _build_head(sec: Section, index: int, shape: tuple[int, int, int], net_hw: tuple[int, int]):
    c, h, w = shape
    classes = sec.get_int("classes", 20)
    extra = {k: v for k, v in sec.options.items() if k not in {"anchors", "mask", "classes", "num"}}
    if sec.kind in ("yolo", "gaussian_yolo"):
        anchors = _anchors(sec)
        num = sec.get_int("num", len(anchors))
        mask = sec.get_ints("mask", list(range(num)))
        if any(not 0 <= m < len(anchors) for m in mask):
            raise sec.error("mask", f"mask {mask} refers to anchors beyond the {len(anchors)} given")
        chosen = [anchors[m] for m in mask]
        per = 5 if sec.kind == "yolo" else 9  # Gaussian YOLOv3: (mu, sigma) for each of x, y, w, h
        if c != len(mask) * (per + classes):
            raise sec.error(None, f"input has {c} channels; {len(mask)} anchors x ({per} + {classes} classes) = "
                                  f"{len(mask) * (per + classes)} expected (check 'filters' of the layer before)")
        sxy = sec.get_float("scale_x_y", 1.0)
        stride = (net_hw[0] / h, net_hw[1] / w)
        new_coords = bool(sec.get_int("new_coords", 0))
        spec = HeadSpec(sec.kind, index, classes, chosen, stride, (h, w), sxy, len(mask), extra, new_coords)
        if sec.kind == "gaussian_yolo":
            return GaussianYoloHead(chosen, classes, sxy), spec
        return YoloHead(chosen, classes, sxy, new_coords), spec
    if sec.kind == "region":
        anchors = _anchors(sec)
        num = sec.get_int("num", len(anchors))
        coords = sec.get_int("coords", 4)
        if coords != 4 or sec.has("tree"):
            raise sec.error("coords" if coords != 4 else "tree", "yolokit supports coords=4 without a tree")
        if len(anchors) != num:
            raise sec.error("anchors", f"num={num} but {len(anchors)} anchor pairs given")
        if c != num * (5 + classes):
            raise sec.error(None, f"input has {c} channels; {num} anchors x (5 + {classes} classes) = "
                                  f"{num * (5 + classes)} expected")
        stride = (net_hw[0] / h, net_hw[1] / w)
        px = [(aw * stride[1], ah * stride[0]) for aw, ah in anchors]
        spec = HeadSpec("region", index, classes, px, stride, (h, w), 1.0, num, extra)
        return RegionHead(anchors, classes, bool(sec.get_int("softmax", 0))), spec
    # detection (YOLOv1)
    side, num, coords = sec.get_int("side", 7), sec.get_int("num", 2), sec.get_int("coords", 4)
    if coords != 4:
        raise sec.error("coords", "yolokit supports coords=4")
    if c * h * w != side * side * (num * 5 + classes):
        raise sec.error(None, f"input has {c * h * w} values; side*side*(num*5 + classes) = "
                              f"{side * side * (num * 5 + classes)} expected (check the [connected] output)")
    spec = HeadSpec("detection", index, classes, [], (net_hw[0] / side, net_hw[1] / side), (side, side), 1.0,
                    num, extra)
    return DetectionHead(side, num, classes, bool(sec.get_int("sqrt", 0)), bool(sec.get_int("softmax", 0))), spec


class DarknetModel(Detector):
    """A network described by a Darknet cfg.

    ``model(x)``: ``x`` float ``(B, 3, H, W)`` RGB in [0, 1], H and W multiples of the network's total stride.
    Eval mode returns decoded ``(B, N, 5+C)`` rows (see :mod:`yolokit.models.heads`); train mode returns the list
    of raw head outputs, one per entry of :attr:`heads`.

    Attributes:
        cfg_text: the cfg this model was built from (saved in checkpoints).
        net: the ``[net]`` options as text (training hyper-parameters for a trainer that wants them).
        input_size: ``(height, width)`` from ``[net]``.
        heads: list of :class:`~yolokit.models.heads.HeadSpec`, in output order.
        infos: per-layer :class:`LayerInfo` rows (shapes at ``input_size``, Darknet FLOPs).
        class_names: list of names, or None.
        weights_header: ``(major, minor, revision, seen, seen_bytes)`` of the last .weights read.
    """

    def __init__(self, cfg_text: str, source: str = "<cfg>", require_head: bool = True):
        super().__init__()
        sections = parse_cfg(cfg_text, source)
        modules, infos, heads = build_layers(sections, require_head)
        self.cfg_text, self.source = cfg_text, source
        self.sections = sections
        self.net = dict(sections[0].options)
        self.input_size = (sections[0].get_int("height", 416), sections[0].get_int("width", 416))
        self.layers = nn.ModuleList(modules)
        self.infos, self.heads = infos, heads
        self.class_names: list[str] | None = None
        #: Settings a checkpoint carries (validation imgsz/conf/iou/max_det); defaults of predict/eval/detect.
        self.settings: dict = {}
        self.weights_header = (0, 2, 0, 0, 8)
        self._kinds = tuple(i.kind for i in infos)
        self._refs = tuple(i.refs for i in infos)
        self._keep = frozenset(j for i in infos for j in i.refs)

    def forward(self, x: Tensor):
        input_hw = (x.shape[2], x.shape[3])
        saved: dict[int, Tensor] = {}
        outs = []
        for i, layer in enumerate(self.layers):
            kind = self._kinds[i]
            if kind == "route":
                x = layer([saved[j] for j in self._refs[i]])
            elif kind in ("shortcut", "scale_channels", "sam"):
                x = layer(x, saved[self._refs[i][0]])
            elif kind in HEAD_KINDS:
                outs.append(layer(x, input_hw))  # a head passes its input on, as the layer's output
            else:
                x = layer(x)
            if i in self._keep:
                saved[i] = x
        if not outs:  # a classifier cfg built as a backbone: the last layer's output
            return x
        return outs if self.training else torch.cat(outs, 1)

    @property
    def nms_beta(self) -> float | None:
        """:func:`yolokit.models.heads.nms_beta_of` this model's heads (DIoU-NMS's beta, or None)."""
        return nms_beta_of(self.heads)

    def flops(self) -> float:
        """Darknet-convention FLOPs at :attr:`input_size` (2 x MACs of conv/connected/local layers)."""
        return sum(i.flops for i in self.infos)


# ---------------------------------------------------------------------------------------------- .weights I/O

def _weight_tensors(model: DarknetModel, upto: int | None = None):
    """Yield ``(layer index, kind, line, [tensors in file order])`` for every layer that has weights."""
    for info, layer in zip(model.infos[:upto], model.layers[:upto]):
        if info.kind == "convolutional":
            if isinstance(layer, L.SharedConv):  # share_index: the weights are layer K's (Darknet skips it too)
                continue
            conv = layer.conv
            if "bn" in layer._modules:
                bn = layer.bn
                ts = [bn.bias, bn.weight, bn.running_mean, bn.running_var, conv.weight]
            else:
                ts = [conv.bias, conv.weight]
        elif info.kind == "connected":
            if layer.bn is not None:
                ts = [layer.bn.bias, layer.linear.weight, layer.bn.weight, layer.bn.running_mean,
                      layer.bn.running_var]
            else:
                ts = [layer.linear.bias, layer.linear.weight]
        elif info.kind == "local":
            ts = [layer.bias, layer.weight]
        elif info.kind == "batchnorm":  # Darknet's load_batchnorm_weights: biases, scales, mean, variance
            ts = [layer.bias, layer.weight, layer.running_mean, layer.running_var]
        else:
            continue
        yield info.index, info.kind, info.line, ts


def read_header(data: bytes, path: str) -> tuple[tuple[int, int, int, int, int], int]:
    """Parse the header; returns ``((major, minor, revision, seen, seen_bytes), offset of the first float)``."""
    if len(data) < 16:
        raise WeightsError(f"{path}: {len(data)} bytes is too short for a Darknet .weights header")
    major, minor, revision = struct.unpack_from("<3i", data, 0)
    if major > 1000 or minor > 1000:
        raise WeightsError(f"{path}: header version {major}.{minor} marks transposed [connected] weights of very "
                           "old Darknet files, which yolokit does not read")
    if major * 10 + minor >= 2:
        (seen,) = struct.unpack_from("<q", data, 12)
        return (major, minor, revision, seen, 8), 20
    (seen,) = struct.unpack_from("<i", data, 12)
    return (major, minor, revision, seen, 4), 16


def partial_layers(path: str | Path) -> int | None:
    """N of a Darknet partial file named ``*.conv.N`` (``darknet partial``: the first N layers' weights, e.g.
    ``yolov4-tiny.conv.29``, ``darknet53.conv.74``), else None."""
    m = re.search(r"\.conv\.(\d+)$", Path(path).name)
    return int(m.group(1)) if m else None


def load_weights(model: DarknetModel, path: str | Path, upto: int | None = None,
                 exact: bool = True) -> DarknetModel:
    """Fill ``model`` from a Darknet ``.weights`` file, in place.

    Args:
        upto: read only the first ``upto`` layers (e.g. 75 for a ``darknet53.conv.74`` backbone file). A file
            named ``*.conv.N`` is a partial file: ``upto`` defaults to N and the other layers keep their
            initialisation (as Darknet's ``detector train cfg yolov4-tiny.conv.29`` does).
        exact: the file must end where the layers read end (False: ignore what follows, as ``darknet partial``
            reads a full file's first layers).
    Raises:
        WeightsError: the file ends inside a layer (the message names it) or has values left over.
    """
    from yolokit.fileio import read_bytes

    path = Path(path)
    if upto is None:
        upto = partial_layers(path)
        if upto is not None and not 0 < upto <= len(model.layers):
            raise WeightsError(f"{path}: a partial file of {upto} layers for a model of {len(model.layers)}")
    # a regular file (/dev/zero is one line, not 12 GB read), at most twice the model's float32 values (a
    # backbone file read with ``upto`` may hold a classifier head the model lacks)
    limit = 2 * 4 * sum(p.numel() for p in model.state_dict().values()) + (64 << 20)
    data = read_bytes(path, "Darknet .weights file", limit, WeightsError)
    header, offset = read_header(data, str(path))
    if (len(data) - offset) % 4:
        raise WeightsError(f"{path}: {len(data) - offset} bytes after the header is not a whole number of float32")
    values = np.frombuffer(data, dtype="<f4", offset=offset)
    pos = 0
    with torch.no_grad():
        for index, kind, line, tensors in _weight_tensors(model, upto):
            need = sum(t.numel() for t in tensors)
            if pos + need > values.size:
                raise WeightsError(f"{path}: file ends inside layer {index} [{kind}] (cfg line {line}): it needs "
                                   f"{need} values, {values.size - pos} remain (file has {values.size} values "
                                   "after the header); the cfg and weights do not match")
            for t in tensors:
                n = t.numel()
                t.copy_(torch.from_numpy(values[pos:pos + n].copy()).view_as(t))
                pos += n
    if pos != values.size and exact:
        what = f"the first {upto} layers" if upto is not None else "the cfg"
        raise WeightsError(f"{path}: {values.size - pos} float32 values left over after {what} consumed {pos}; "
                           "the cfg and weights do not match")
    model.weights_header = header
    return model


def save_weights(model: DarknetModel, path: str | Path, upto: int | None = None, seen: int | None = None) -> None:
    """Write ``model`` as a Darknet ``.weights`` file, with the header of the last file loaded into it (atomically:
    a crash mid-write leaves the previous file whole). ``upto``: only the first ``upto`` layers (a partial file);
    ``seen``: the header's image count (default: the loaded file's)."""
    major, minor, revision, seen0, seen_bytes = model.weights_header
    seen = seen0 if seen is None else seen
    head = struct.pack("<3i", major, minor, revision) + struct.pack("<q" if seen_bytes == 8 else "<i", seen)
    chunks = [head]
    for _, _, _, tensors in _weight_tensors(model, upto):
        for t in tensors:
            chunks.append(t.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4").tobytes())
    write_atomic(path, lambda f: f.write(b"".join(chunks)))


def count_weights(model: DarknetModel) -> int:
    """Number of float32 values a .weights file for ``model`` holds after its header."""
    return sum(t.numel() for _, _, _, ts in _weight_tensors(model) for t in ts)


def with_num_classes(model: DarknetModel, num_classes: int, class_names: list[str] | None = None) -> DarknetModel:
    """A copy of ``model`` whose heads predict ``num_classes`` classes (transfer learning).

    The cfg is rewritten (``classes=`` of every head, ``filters=``/``output=`` of the layer feeding it); the layers
    feeding the heads get fresh initialisation, every other layer keeps ``model``'s weights.
    """
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
    sections = [Section(s.kind, s.line, s.source, dict(s.options), dict(s.lines)) for s in model.sections]
    reset = set()
    for spec in model.heads:
        head = sections[spec.layer + 1]
        prev_index = spec.layer - 1
        prev = sections[prev_index + 1]
        head.options["classes"] = str(num_classes)
        if spec.kind in ("yolo", "region", "gaussian_yolo"):
            if prev.kind != "convolutional":
                raise ConfigError(f"{prev.where()}: the layer before [{spec.kind}] must be [convolutional]")
            per = 9 if spec.kind == "gaussian_yolo" else 5
            prev.options["filters"] = str(spec.num_boxes * (per + num_classes))
        else:
            if prev.kind != "connected":
                raise ConfigError(f"{prev.where()}: the layer before [detection] must be [connected]")
            side = spec.grid[0]
            prev.options["output"] = str(side * side * (spec.num_boxes * 5 + num_classes))
        reset.add(prev_index)
    new = DarknetModel(format_cfg(sections), model.source)
    keep = {k: v for k, v in model.state_dict().items() if int(k.split(".")[1]) not in reset}
    missing, unexpected = new.load_state_dict(keep, strict=False)
    assert not unexpected and all(int(k.split(".")[1]) in reset for k in missing), (missing, unexpected)
    new.class_names = list(class_names) if class_names is not None else None
    new.weights_header = model.weights_header[:3] + (0, model.weights_header[4])
    new.train(model.training)
    return new.to(next(model.parameters()).device)
