"""Darknet networks in torch: build a :class:`DarknetModel` from cfg text, read and write ``.weights`` files.

``.weights`` format (Darknet ``load_weights``/``save_weights``): int32 ``major, minor, revision``, then ``seen``
(images seen in training) as int64 when ``major*10 + minor >= 2`` (and both < 1000) else int32, then float32
values layer by layer in cfg order:

* ``[convolutional]``: biases[n]; with batch_normalize: scales[n], rolling_mean[n], rolling_variance[n];
  then weights[n * c/groups * size * size].
* ``[connected]``: biases[out], weights[out * in]; with batch_normalize: scales, rolling_mean, rolling_variance.
* ``[local]``: biases[out_h*out_w*n], weights[out_h*out_w * n * c*size*size].

Nothing else carries weights. The reader must consume the file exactly; the writer reproduces the header it read,
so load -> save gives a byte-identical file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from yolokit.errors import ConfigError, WeightsError
from yolokit.models import layers as L
from yolokit.models.cfg import Section, format_cfg, parse_cfg
from yolokit.models.heads import DetectionHead, HeadSpec, RegionHead, YoloHead

HEAD_KINDS = ("yolo", "region", "detection")


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


def build_layers(sections: list[Section]):
    """Walk the cfg with Darknet's shape arithmetic; returns ``(modules, infos, heads)``.

    Shapes are ``(C, H, W)`` at the cfg's ``[net]`` size; a shape that cannot work (a route of different
    sizes, a shortcut of different shapes, a head whose input has the wrong channel count) is a ConfigError
    naming the line.
    """
    net = sections[0]
    c, h, w = net.get_int("channels", 3), net.get_int("height", 416), net.get_int("width", 416)
    if min(c, h, w) <= 0:
        raise net.error(None, f"needs positive channels/height/width, got {c}/{h}/{w}")
    shapes: list[tuple[int, int, int]] = []
    modules: list[nn.Module] = []
    infos: list[LayerInfo] = []
    heads: list[HeadSpec] = []
    shape, net_hw = (c, h, w), (h, w)
    for index, sec in enumerate(sections[1:]):
        c, h, w = shape
        refs: tuple[int, ...] = ()
        flops = 0.0
        k = sec.kind
        if k == "convolutional":
            n, size = sec.get_int("filters", 1), sec.get_int("size", 1)
            stride, groups, dil = _strides(sec, 1), sec.get_int("groups", 1), sec.get_int("dilation", 1)
            pad, act, bn = _pad_for(sec, size), _act(sec), bool(sec.get_int("batch_normalize", 0))
            if groups < 1 or c % groups or n % groups:
                raise sec.error("groups", f"groups={groups} must divide input channels {c} and filters {n}")
            oh = (h + 2 * pad - dil * (size - 1) - 1) // stride[0] + 1
            ow = (w + 2 * pad - dil * (size - 1) - 1) // stride[1] + 1
            if oh <= 0 or ow <= 0:
                raise sec.error(None, f"input {h}x{w} too small for size={size} stride={stride}")
            mod = L.ConvBlock(c, n, size, stride, pad, groups, dil, bn, act)
            out = (n, oh, ow)
            flops = 2.0 * n * (c // groups) * size * size * oh * ow
            st = f"{stride[0]}" if stride[0] == stride[1] else f"{stride[0]}x{stride[1]}"
            detail = f"{n:5d} {size}x{size}/{st}" + (f" g{groups}" if groups > 1 else "") + (" bn" if bn else "") \
                + f" {act}"
        elif k == "maxpool":
            stride = _strides(sec, 1)
            size = sec.get_int("size", stride[0])
            padding = sec.get_int("padding", size - 1)
            oh, ow = (h + padding - size) // stride[0] + 1, (w + padding - size) // stride[1] + 1
            mod, out = L.MaxPool(size, stride, padding), (c, oh, ow)
            detail = f"      {size}x{size}/{stride[0]}"
        elif k == "avgpool":
            mod, out, detail = L.GlobalAvgPool(), (c, 1, 1), "      global"
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
            mod = L.Route(groups, gid)
            out = (sum(s[0] // groups for s in srcs), srcs[0][1], srcs[0][2])
            detail = "      " + ",".join(str(j) for j in refs) + (f" group {gid}/{groups}" if groups > 1 else "")
        elif k == "shortcut":
            refs = (_ref(sec, "from", sec.get_int("from"), index),)
            if shapes[refs[0]] != shape:
                raise sec.error("from", f"adds layer {refs[0]} of shape {shapes[refs[0]]} to {shape}: yolokit "
                                        "supports only equal shapes")
            act = _act(sec, "linear")
            mod, out, detail = L.Shortcut(act), shape, f"      from {refs[0]} {act}"
        elif k == "upsample":
            stride, scale = sec.get_int("stride", 2), sec.get_float("scale", 1.0)
            if stride < 1:
                raise sec.error("stride", f"stride={stride}: yolokit supports only upsampling (stride >= 1)")
            mod, out, detail = L.Upsample(stride, scale), (c, h * stride, w * stride), f"      x{stride}"
        elif k == "dropout":
            p = sec.get_float("probability", 0.5)
            if not 0 <= p < 1:
                raise sec.error("probability", f"probability={p} must be in [0, 1)")
            mod, out, detail = L.Dropout(p), shape, f"      p={p:g}"
        elif k == "connected":
            n, act, bn = sec.get_int("output", 1), _act(sec), bool(sec.get_int("batch_normalize", 0))
            mod, out = L.Connected(c * h * w, n, bn, act), (n, 1, 1)
            flops = 2.0 * c * h * w * n
            detail = f"{n:5d} fc" + (" bn" if bn else "") + f" {act}"
        elif k == "local":
            n, size, stride = sec.get_int("filters", 1), sec.get_int("size", 1), sec.get_int("stride", 1)
            pad = size // 2 if sec.get_int("pad", 0) else 0
            act = _act(sec)
            mod = L.Local(c, (h, w), n, size, stride, pad, act)
            out = (n, *mod.out_hw)
            flops = 2.0 * n * c * size * size * out[1] * out[2]
            detail = f"{n:5d} {size}x{size}/{stride} local {act}"
        elif k == "reorg":
            s = sec.get_int("stride", 2)
            if h % s or w % s or c % (s * s):
                raise sec.error("stride", f"stride={s} must divide {h}x{w} and s*s must divide {c} channels")
            mod, out, detail = L.Reorg(s), (c * s * s, h // s, w // s), f"      /{s}"
        elif k in HEAD_KINDS:
            mod, spec = _build_head(sec, index, shape, net_hw)
            heads.append(spec)
            out, detail = shape, f"      {spec.num_classes} classes, {spec.num_boxes} boxes/cell"
        else:  # parse_cfg only lets known kinds through
            raise sec.error(None, "layer kind without a builder")
        modules.append(mod)
        shapes.append(out)
        infos.append(LayerInfo(index, k, sec.line, shape, out, refs, detail, flops))
        shape = out
    if not heads:
        raise ConfigError(f"{net.source}: no detection layer ([yolo], [region] or [detection])")
    return modules, infos, heads


def _build_head(sec: Section, index: int, shape: tuple[int, int, int], net_hw: tuple[int, int]):
    c, h, w = shape
    classes = sec.get_int("classes", 20)
    extra = {k: v for k, v in sec.options.items() if k not in {"anchors", "mask", "classes", "num"}}
    if sec.kind == "yolo":
        anchors = _anchors(sec)
        num = sec.get_int("num", len(anchors))
        mask = sec.get_ints("mask", list(range(num)))
        if any(not 0 <= m < len(anchors) for m in mask):
            raise sec.error("mask", f"mask {mask} refers to anchors beyond the {len(anchors)} given")
        chosen = [anchors[m] for m in mask]
        if c != len(mask) * (5 + classes):
            raise sec.error(None, f"input has {c} channels; {len(mask)} anchors x (5 + {classes} classes) = "
                                  f"{len(mask) * (5 + classes)} expected (check 'filters' of the layer before)")
        sxy = sec.get_float("scale_x_y", 1.0)
        stride = (net_hw[0] / h, net_hw[1] / w)
        spec = HeadSpec("yolo", index, classes, chosen, stride, (h, w), sxy, len(mask), extra)
        return YoloHead(chosen, classes, sxy), spec
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


class DarknetModel(nn.Module):
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

    def __init__(self, cfg_text: str, source: str = "<cfg>"):
        super().__init__()
        sections = parse_cfg(cfg_text, source)
        modules, infos, heads = build_layers(sections)
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

    @property
    def num_classes(self) -> int:
        return self.heads[0].num_classes

    def forward(self, x: Tensor):
        input_hw = (x.shape[2], x.shape[3])
        saved: dict[int, Tensor] = {}
        outs = []
        for i, layer in enumerate(self.layers):
            kind = self._kinds[i]
            if kind == "route":
                x = layer([saved[j] for j in self._refs[i]])
            elif kind == "shortcut":
                x = layer(x, saved[self._refs[i][0]])
            elif kind in HEAD_KINDS:
                outs.append(layer(x, input_hw))  # a head passes its input on, as the layer's output
            else:
                x = layer(x)
            if i in self._keep:
                saved[i] = x
        return outs if self.training else torch.cat(outs, 1)

    def flops(self) -> float:
        """Darknet-convention FLOPs at :attr:`input_size` (2 x MACs of conv/connected/local layers)."""
        return sum(i.flops for i in self.infos)

    def predict(self, images, **kwargs) -> list[Tensor]:
        """Detect objects in HxWx3 uint8 RGB images (or one): a list of ``(K, 6)`` ``[x1, y1, x2, y2, score,
        class]`` in each image's pixels. Keyword arguments (``conf``, ``iou``, ``imgsz``, ``max_det``,
        ``classes``, ``letterbox``, ``agnostic``, ``tta``) are :class:`yolokit.models.predict.Predictor`'s;
        unset thresholds and size come from :attr:`settings`, else the cfg and the detection defaults."""
        from yolokit.models.predict import Predictor

        return Predictor(self, **kwargs)(images)

    def optimize_for_inference(self, channels_last: bool | None = None, fuse: bool | None = None,
                               dtype: torch.dtype = torch.float32, backend: str = "auto") -> nn.Module:
        """The fastest equivalent module for inference (ONNX Runtime on CPU when installed, else the fused torch
        module); see :func:`yolokit.models.inference.optimize`."""
        from yolokit.models.inference import optimize

        return optimize(self, channels_last=channels_last, fuse=fuse, dtype=dtype, backend=backend)


# ---------------------------------------------------------------------------------------------- .weights I/O

def _weight_tensors(model: DarknetModel, upto: int | None = None):
    """Yield ``(layer index, kind, line, [tensors in file order])`` for every layer that has weights."""
    for info, layer in zip(model.infos[:upto], model.layers[:upto]):
        if info.kind == "convolutional":
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


def load_weights(model: DarknetModel, path: str | Path, upto: int | None = None) -> DarknetModel:
    """Fill ``model`` from a Darknet ``.weights`` file, in place.

    Args:
        upto: read only the first ``upto`` layers (e.g. 75 for a ``darknet53.conv.74`` backbone file).
    Raises:
        WeightsError: the file ends inside a layer (the message names it) or has values left over.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read ({exc})") from None
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
    if pos != values.size:
        what = f"the first {upto} layers" if upto is not None else "the cfg"
        raise WeightsError(f"{path}: {values.size - pos} float32 values left over after {what} consumed {pos}; "
                           "the cfg and weights do not match")
    model.weights_header = header
    return model


def save_weights(model: DarknetModel, path: str | Path, upto: int | None = None) -> None:
    """Write ``model`` as a Darknet ``.weights`` file, with the header of the last file loaded into it (atomically:
    a crash mid-write leaves the previous file whole)."""
    major, minor, revision, seen, seen_bytes = model.weights_header
    head = struct.pack("<3i", major, minor, revision) + struct.pack("<q" if seen_bytes == 8 else "<i", seen)
    chunks = [head]
    for _, _, _, tensors in _weight_tensors(model, upto):
        for t in tensors:
            chunks.append(t.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4").tobytes())
    from yolokit.models.checkpoint import write_atomic

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
        if spec.kind in ("yolo", "region"):
            if prev.kind != "convolutional":
                raise ConfigError(f"{prev.where()}: the layer before [{spec.kind}] must be [convolutional]")
            prev.options["filters"] = str(spec.num_boxes * (5 + num_classes))
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
