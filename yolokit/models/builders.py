"""Darknet cfg sections -> torch layers: the builder of each layer kind, with Darknet's shape arithmetic.

:func:`build_layers` walks a parsed cfg (:func:`yolokit.models.cfg.parse_cfg`) layer by layer: each kind's builder
checks the section against the shape coming in, and returns the shape going out, the summary row
(:class:`LayerInfo`) and a maker for the module; :class:`yolokit.models.darknet.DarknetModel` runs the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from yolokit.errors import ConfigError
from yolokit.models import layers as L
from yolokit.models.cfg import Section
from yolokit.models.heads import DetectionHead, GaussianYoloHead, HeadSpec, RegionHead, YoloHead

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


@dataclass
class _Layer:
    """What a per-kind builder returns: the output shape, the summary text, the module maker (a function of the
    modules built so far -> this layer's module), the layers it reads, its Darknet FLOPs and parameter count."""

    out: tuple[int, int, int]
    detail: str
    make: Callable[[list[nn.Module]], nn.Module]
    refs: tuple[int, ...] = ()
    flops: float = 0.0
    params: int = 0


@dataclass
class _Walk:
    """The walk so far, for builders that look back (routes, shortcuts, shared weights, heads)."""

    sections: list[Section]
    net_hw: tuple[int, int]
    shapes: list[tuple[int, int, int]] = field(default_factory=list)
    infos: list[LayerInfo] = field(default_factory=list)
    heads: list[HeadSpec] = field(default_factory=list)


def _shared_conv(sec: Section, index: int, c: int, n: int, size: int, groups: int, bn: bool, walk: _Walk) -> int:
    """The layer whose weights ``share_index`` names, checked to fit this one."""
    # Darknet: share_index >= 0 is a layer number, a negative one is relative to this layer.
    si = sec.get_int("share_index")
    j = si if si >= 0 else index + si
    infos = walk.infos
    if not 0 <= j < index or infos[j].kind != "convolutional" or infos[j].refs:
        raise sec.error("share_index", f"share_index={si} -> layer {j} is not an earlier "
                                       "[convolutional] with its own weights")
    src = walk.sections[j + 1]
    if (src.get_int("filters", 1), src.get_int("size", 1), src.get_int("groups", 1),
            infos[j].in_shape[0], bool(src.get_int("batch_normalize", 0))) != (n, size, groups, c, bn):
        raise sec.error("share_index", f"layer {j} has other filters/size/groups/channels/batch_normalize "
                                       "than this layer, so its weights cannot be shared")
    return j


def _convolutional(sec: Section, index: int, shape, walk: _Walk) -> _Layer:
    c, h, w = shape
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
    flops = 2.0 * n * (c // groups) * size * size * oh * ow
    st = f"{stride[0]}" if stride[0] == stride[1] else f"{stride[0]}x{stride[1]}"
    detail = f"{n:5d} {size}x{size}/{st}" + (f" g{groups}" if groups > 1 else "") + (" bn" if bn else "") \
        + f" {act}"
    if sec.has("share_index"):
        j = _shared_conv(sec, index, c, n, size, groups, bn, walk)
        return _Layer((n, oh, ow), detail + f" shares {j}",
                      lambda built: L.SharedConv(built[j], stride, pad, dil, act), (j,), flops)
    params = n * (c // groups) * size * size + (4 * n if bn else n)
    return _Layer((n, oh, ow), detail, lambda built: L.ConvBlock(c, n, size, stride, pad, groups, dil, bn, act),
                  (), flops, params)


def _pool(sec: Section, index: int, shape, walk: _Walk) -> _Layer:
    c, h, w = shape
    stride = _strides(sec, 1)
    size = sec.get_int("size", stride[0])
    padding = sec.get_int("padding", size - 1)
    oh, ow = (h + padding - size) // stride[0] + 1, (w + padding - size) // stride[1] + 1
    if oh <= 0 or ow <= 0:
        raise sec.error(None, f"input {h}x{w} too small for size={size} stride={stride}")
    cls = L.MaxPool if sec.kind == "maxpool" else L.LocalAvgPool
    detail = f"      {size}x{size}/{stride[0]}" + (" avg" if sec.kind == "local_avgpool" else "")
    return _Layer((c, oh, ow), detail, lambda built: cls(size, stride, padding))


def _avgpool(sec: Section, index: int, shape, walk: _Walk) -> _Layer:
    return _Layer((shape[0], 1, 1), "      global", lambda built: L.GlobalAvgPool())


def _route(sec: Section, index: int, shape, walk: _Walk) -> _Layer:
    refs = tuple(_ref(sec, "layers", v, index) for v in sec.get_ints("layers"))
    if not refs:
        raise sec.error("layers", "needs at least one layer")
    groups, gid = sec.get_int("groups", 1), sec.get_int("group_id", 0)
    if not 0 <= gid < groups:
        raise sec.error("group_id", f"group_id={gid} must be in [0, groups={groups})")
    srcs = [walk.shapes[j] for j in refs]
    if any(s[1:] != srcs[0][1:] for s in srcs):
        raise sec.error("layers", f"routed layers {list(refs)} have different sizes "
                                  f"{[s[1:] for s in srcs]}")
    if any(s[0] % groups for s in srcs):
        raise sec.error("groups", f"groups={groups} must divide the channels {[s[0] for s in srcs]}")
    out = (sum(s[0] // groups for s in srcs), srcs[0][1], srcs[0][2])
    detail = "      " + ",".join(str(j) for j in refs) + (f" group {gid}/{groups}" if groups > 1 else "")
    return _Layer(out, detail, lambda built: L.Route(groups, gid), refs)


def _shortcut(sec: Section, index: int, shape, walk: _Walk) -> _Layer:
    refs = (_ref(sec, "from", sec.get_int("from"), index),)
    other = walk.shapes[refs[0]]
    act = _act(sec, "linear")
    cls = L.Shortcut if other == shape else L.PartialShortcut
    detail = f"      from {refs[0]} {act}" + (f" ({other[0]}ch)" if other != shape else "")
    return _Layer(shape, detail, lambda built: cls(act), refs)


def _scale(sec: Section, index: int, shape, walk: _Walk) -> _Layer:
    """``[scale_channels]`` and ``[sam]``: this layer's output times an earlier layer's."""
    c, h, w = shape
    refs = (_ref(sec, "from", sec.get_int("from"), index),)
    other = walk.shapes[refs[0]]
    act = _act(sec, "linear")
    if sec.kind == "sam":
        ok = other == shape
        want = f"the same shape as layer {refs[0]} {other}"
        make = lambda built: L.Sam(act)  # noqa: E731
    elif sec.get_int("scale_wh", 0):
        ok = shape[1:] == other[1:]
        want = f"one channel of layer {refs[0]}'s size {other[1:]}"
        make = lambda built: L.ScaleChannels(True, act)  # noqa: E731
    else:
        ok = c * h * w == other[0]
        want = f"one value per channel of layer {refs[0]} ({other[0]})"
        make = lambda built: L.ScaleChannels(False, act)  # noqa: E731
    if not ok:
        raise sec.error("from", f"input {shape} must have {want}")
    return _Layer(other, f"      x layer {refs[0]} {act}", make, refs)


def _upsample(sec: Section, index: int, shape, walk: _Walk) -> _Layer:
    c, h, w = shape
    stride, scale = sec.get_int("stride", 2), sec.get_float("scale", 1.0)
    return _Layer((c, h * stride, w * stride), f"      x{stride}", lambda built: L.Upsample(stride, scale))


def _dropout(sec: Section, index: int, shape, walk: _Walk) -> _Layer:
    p = sec.get_float("probability", 0.5)
    if not 0 <= p < 1:
        raise sec.error("probability", f"probability={p} must be in [0, 1)")
    return _Layer(shape, f"      p={p:g}", lambda built: L.Dropout(p))


def _connected(sec: Section, index: int, shape, walk: _Walk) -> _Layer:
    c, h, w = shape
    n, act, bn = sec.get_int("output", 1), _act(sec), bool(sec.get_int("batch_normalize", 0))
    params = c * h * w * n + (4 * n if bn else n)
    detail = f"{n:5d} fc" + (" bn" if bn else "") + f" {act}"
    return _Layer((n, 1, 1), detail, lambda built: L.Connected(c * h * w, n, bn, act), (), 2.0 * c * h * w * n,
                  params)


def _local(sec: Section, index: int, shape, walk: _Walk) -> _Layer:
    c, h, w = shape
    n, size, stride = sec.get_int("filters", 1), sec.get_int("size", 1), sec.get_int("stride", 1)
    pad = size // 2 if sec.get_int("pad", 0) else 0
    act = _act(sec)
    oh, ow = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
    if oh <= 0 or ow <= 0:
        raise sec.error(None, f"input {h}x{w} too small for size={size} stride={stride}")
    params = oh * ow * n * (c * size * size + 1)
    flops = 2.0 * n * c * size * size * oh * ow
    return _Layer((n, oh, ow), f"{n:5d} {size}x{size}/{stride} local {act}",
                  lambda built: L.Local(c, (h, w), n, size, stride, pad, act), (), flops, params)


def _reorg(sec: Section, index: int, shape, walk: _Walk) -> _Layer:
    c, h, w = shape
    k = sec.kind
    s = sec.get_int("stride", 2 if k == "reorg" else 1)
    if h % s or w % s or (k == "reorg" and c % (s * s)):
        raise sec.error("stride", f"stride={s} must divide {h}x{w}" + (f" and s*s must divide {c} channels"
                                                                      if k == "reorg" else ""))
    cls = L.Reorg if k == "reorg" else L.Reorg3d
    return _Layer((c * s * s, h // s, w // s), f"      /{s}", lambda built: cls(s))


def _batchnorm(sec: Section, index: int, shape, walk: _Walk) -> _Layer:
    c = shape[0]
    return _Layer(shape, "      bn", lambda built: nn.BatchNorm2d(c, eps=L.BN_EPS, momentum=0.01), params=4 * c)


def _softmax(sec: Section, index: int, shape, walk: _Walk) -> _Layer:
    c, h, w = shape
    groups, temp = sec.get_int("groups", 1), sec.get_float("temperature", 1.0)
    if sec.has("tree"):
        raise sec.error("tree", "a softmax tree (YOLO9000's WordTree) is not supported by yolokit")
    if (c * h * w) % groups or temp <= 0:
        raise sec.error("groups", f"groups={groups} must divide {c * h * w} values, temperature > 0")
    return _Layer(shape, f"      groups {groups}", lambda built: L.Softmax(groups, temp))


def _cost(sec: Section, index: int, shape, walk: _Walk) -> _Layer:
    return _Layer(shape, f"      {sec.get_str('type', 'sse')} (training only)", lambda built: L.Identity())


def _crop(sec: Section, index: int, shape, walk: _Walk) -> _Layer:
    c, h, w = shape
    ch, cw = sec.get_int("crop_height", 1), sec.get_int("crop_width", 1)
    if ch > h or cw > w:
        raise sec.error("crop_height", f"crop {ch}x{cw} is larger than the input {h}x{w}")
    noadjust = bool(sec.get_int("noadjust", 0))
    return _Layer((c, ch, cw), f"      {ch}x{cw}" + ("" if noadjust else " x2-1"),
                  lambda built: L.Crop((ch, cw), noadjust))


def _head(sec: Section, index: int, shape, walk: _Walk) -> _Layer:
    mod, spec = build_head(sec, index, shape, walk.net_hw)
    walk.heads.append(spec)
    return _Layer(shape, f"      {spec.num_classes} classes, {spec.num_boxes} boxes/cell", lambda built: mod)


#: The builder of each layer kind: ``(section, index, input shape, walk) -> _Layer``.
_BUILDERS = {
    "convolutional": _convolutional, "maxpool": _pool, "local_avgpool": _pool, "avgpool": _avgpool,
    "route": _route, "shortcut": _shortcut, "scale_channels": _scale, "sam": _scale, "upsample": _upsample,
    "dropout": _dropout, "connected": _connected, "local": _local, "reorg": _reorg, "reorg3d": _reorg,
    "batchnorm": _batchnorm, "softmax": _softmax, "cost": _cost, "crop": _crop,
    **{k: _head for k in HEAD_KINDS},
}


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
    walk = _Walk(sections, (h, w))
    makers: list = []  # one per layer: a function of the modules built so far -> this layer's module
    shape = (c, h, w)
    n_params, n_values, biggest = 0, c * h * w, (0, 0)
    for index, sec in enumerate(sections[1:]):
        builder = _BUILDERS.get(sec.kind)
        if builder is None:  # parse_cfg only lets known kinds through
            raise sec.error(None, "layer kind without a builder")
        layer = builder(sec, index, shape, walk)
        makers.append(layer.make)
        walk.shapes.append(layer.out)
        walk.infos.append(LayerInfo(index, sec.kind, sec.line, shape, layer.out, layer.refs, layer.detail,
                                    layer.flops))
        n_params += layer.params
        values = layer.out[0] * layer.out[1] * layer.out[2]
        n_values += values
        biggest = max(biggest, (values + layer.params, index))
        shape = layer.out
    _check_budget(net, walk, n_params, n_values, biggest[1])
    if require_head and not walk.heads:
        raise ConfigError(f"{net.source}: no detection layer ([yolo], [region] or [detection])")
    modules: list[nn.Module] = []
    for make in makers:
        modules.append(make(modules))
    return modules, walk.infos, walk.heads


def _check_budget(net: Section, walk: _Walk, n_params: int, n_values: int, j: int) -> None:
    """ConfigError when the cfg needs more than :data:`MEMORY_BUDGET_BYTES` (``j``: the largest layer)."""
    need = 4.0 * (n_params + n_values)
    if need > MEMORY_BUDGET_BYTES:
        info = walk.infos[j]
        raise ConfigError(f"{net.source}: this cfg needs {_gb(need)} at {walk.net_hw[0]}x{walk.net_hw[1]} (float32, "
                          f"batch 1: {n_params:,} parameters and {n_values:,} output values), over yolokit's budget "
                          f"of {_gb(MEMORY_BUDGET_BYTES)}; the largest is layer {j} [{info.kind}] at line "
                          f"{info.line}, output {info.out_shape}")


def build_head(sec: Section, index: int, shape: tuple[int, int, int], net_hw: tuple[int, int]):
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
