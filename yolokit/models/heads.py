"""Detection heads: ``[yolo]`` (v3), ``[region]`` (v2) and ``[detection]`` (v1).

Each head takes the output of the layer before it and, in **train mode**, returns its RAW values (what a loss is
built on); in **eval mode** it returns decoded rows ``(B, N, 5+C)`` = ``[cx, cy, w, h, objectness, C class
probabilities]`` with boxes in network-input pixels, the layout :func:`yolokit.models.postprocess.postprocess` takes
(score = objectness x class probability).

Raw layouts (train mode):

* ``[yolo]``  ``(B, A, H, W, 5+C)`` = ``[tx, ty, tw, th, to, class logits]``, pre-activation. Decoding
  (Darknet's ``get_yolo_box``, with ``s = scale_x_y``)::

      cx = (j + sigmoid(tx) * s - (s - 1) / 2) * stride_x      # j = column, stride = input_w / W
      cy = (i + sigmoid(ty) * s - (s - 1) / 2) * stride_y
      w  = exp(tw) * anchor_w                                  # anchors in network pixels
      h  = exp(th) * anchor_h
      objectness = sigmoid(to); class prob = sigmoid(logit)    # independent logistic classes

* ``[yolo] new_coords=1`` (scaled YOLOv4, YOLOv7): the conv before the head already applied ``logistic``, so the
  raw values ``v`` are probabilities and the head applies no activation (Darknet's ``forward_yolo_layer`` skips
  it, ``get_yolo_box`` squares instead of exp)::

      cx = (j + v_x * s - (s - 1) / 2) * stride_x              # s = 2: (2*sigmoid - 0.5 + j) * stride
      w  = (2 * v_w)^2 * anchor_w                              # no exp: at most 4x the anchor
      objectness = v_o; class prob = v_c

* ``[region]`` ``(B, A, H, W, 5+C)`` same values; ``w = exp(tw) * anchor_w`` where the cfg gives anchors in grid
  cells (``model.heads[i].anchors`` has them in network pixels at the cfg's size), class probs = softmax over C
  (when ``softmax=1``, as in YOLOv2).
* ``[detection]`` ``(B, S, S, B*5 + C)``: per cell, ``nb`` boxes of ``[x, y, w, h, conf]`` then ``C`` class
  scores, all as the connected layer produced them (no activation). ``x, y`` are offsets in the cell, ``w, h``
  fractions of the image (square-rooted when ``sqrt=1``, YOLOv1 sec. 2.2). Decoded rows are ``S*S*nb`` boxes,
  objectness = conf, class probs = the cell's class scores (softmaxed when ``softmax=1``). This is a
  re-arrangement of Darknet's flat order (all class scores, then all confidences, then all coordinates).

Row order of the decoded output: head by head in cfg order, then anchor, row, column (``[detection]``: row,
column, box).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn


@dataclass
class HeadSpec:
    """What a loss or a decoder needs to know about one detection head.

    Attributes:
        kind: ``'yolo'``, ``'region'`` or ``'detection'``.
        layer: index of the head in the cfg's layer list.
        num_classes: C.
        anchors: ``[(w, h), ...]`` in network pixels at the cfg's input size (``[]`` for detection).
        stride: input pixels per grid cell at the cfg's input size, ``(sy, sx)``.
        grid: ``(H, W)`` at the cfg's input size.
        scale_x_y: [yolo] xy scaling (1.0 = plain sigmoid).
        num_boxes: boxes per cell (A for yolo/region, B for detection).
        new_coords: [yolo] ``new_coords=1`` (raw values are already probabilities; wh = (2v)^2 * anchor).
        options: the remaining cfg keys (e.g. ignore_thresh, object_scale, sqrt, softmax, rescore) as text.
    """

    kind: str
    layer: int
    num_classes: int
    anchors: list[tuple[float, float]]
    stride: tuple[float, float]
    grid: tuple[int, int]
    scale_x_y: float = 1.0
    num_boxes: int = 0
    options: dict[str, str] = field(default_factory=dict)
    new_coords: bool = False


def head_inputs(model) -> list[tuple[HeadSpec, int]]:
    """Each detection head of ``model`` with the index of the layer that feeds it (the one before it: the conv, or
    YOLOv1's connected layer, whose outputs the head decodes). Transfer learning re-sizes those layers; int8 export
    keeps them in float."""
    return [(spec, spec.layer - 1) for spec in getattr(model, "heads", None) or [] if spec.layer >= 1]


def head_convs(model: nn.Module):
    """Yield ``(spec, conv)`` for each anchor head fed directly by a convolution."""
    for spec, index in head_inputs(model):
        if spec.kind not in ("yolo", "region"):
            continue
        conv = getattr(model.layers[index], "conv", None)
        if isinstance(conv, nn.Conv2d):
            yield spec, conv


@torch.no_grad()
def prior_bias_init(model: nn.Module, prior: float = 0.01) -> int:
    """Objectness bias = logit(``prior``), box biases 0, class biases logit(1 / C) for every anchor head fed by
    a convolution with a bias. Returns the number of heads initialised."""
    done = 0
    for spec, conv in head_convs(model):
        if conv.bias is None:
            continue
        a, c = spec.num_boxes, spec.num_classes
        b = conv.bias.view(a, 5 + c)
        b[:, :4] = 0
        b[:, 4] = math.log(prior / (1 - prior))
        b[:, 5:] = math.log(1 / max(c, 2) / (1 - 1 / max(c, 2)))
        done += 1
    return done


def nms_beta_of(heads) -> float | None:
    """``beta_nms`` when a model's heads ask for ``nms_kind=diounms`` (Darknet's DIoU-NMS, default beta 0.6), else
    None (greedy IoU NMS). Read from the head specs, so that eager, fast-path and exported models of one cfg run
    the same NMS. Darknet's ``greedynms`` is DIoU with beta 1 in box.c; yolokit, like OpenCV, keeps plain IoU NMS
    for it, so that its detections match OpenCV's on those cfgs."""
    for spec in heads:
        options = spec.get("options", {}) if isinstance(spec, dict) else spec.options
        if str((options or {}).get("nms_kind", "")).lower() == "diounms":
            return float((options or {}).get("beta_nms", 0.6))
    return None


def cell_grid(h: int, w: int, device=None, dtype=torch.float32) -> Tensor:
    """``(H, W, 2)`` cell offsets ``[column, row]``."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=dtype), torch.arange(w, device=device, dtype=dtype),
                            indexing="ij")
    return torch.stack((xs, ys), -1)


def anchor_xy(sig_xy: Tensor, grid: Tensor, stride, scale_x_y: float = 1.0) -> Tensor:
    """Box centres of an anchor head from ``sigmoid(tx, ty)``: ``(sigmoid * s - (s - 1) / 2 + cell) * stride``
    (Darknet's ``get_yolo_box``; ``s = scale_x_y``). ``grid`` broadcasts to ``sig_xy`` (cell offsets)."""
    if scale_x_y != 1.0:
        sig_xy = sig_xy * scale_x_y - (scale_x_y - 1) / 2
    return (sig_xy + grid) * stride


def anchor_wh(t_wh: Tensor, anchors: Tensor, max_log: float | None = None) -> Tensor:
    """Box sizes of an anchor head: ``exp(tw, th) * anchor`` (anchors in the same unit as the result);
    ``max_log`` clamps ``tw, th`` first (the losses use it so a diverging prediction cannot overflow)."""
    if max_log is not None:
        t_wh = t_wh.clamp(max=max_log)
    return torch.exp(t_wh) * anchors


def new_coords_wh(v_wh: Tensor, anchors: Tensor) -> Tensor:
    """Box sizes of a ``new_coords=1`` head from the (already logistic) values: ``(2 v)^2 * anchor``."""
    return (2 * v_wh) ** 2 * anchors


def decode_anchor_boxes(p: Tensor, anchors: Tensor, stride, scale_x_y: float = 1.0,
                        max_log: float | None = None, new_coords: bool = False) -> Tensor:
    """Raw ``[yolo]``/``[region]`` values ``(B, A, H, W, >=4)`` -> boxes ``(B, A, H, W, 4)`` ``[cx, cy, w, h]`` in
    network pixels; ``anchors (A, 2)`` in network pixels, ``stride`` a number or ``(sx, sy)``. The one decoding
    of anchor boxes: heads, losses and the post-processor's input all come from it. ``new_coords``: the values
    are already probabilities (no sigmoid, no exp; see the module docstring)."""
    _, na, h, w, _ = p.shape
    grid = cell_grid(h, w, p.device, p.dtype)
    anchors = anchors.to(p).view(1, na, 1, 1, 2)
    if new_coords:
        return torch.cat((anchor_xy(p[..., :2], grid, stride, scale_x_y), new_coords_wh(p[..., 2:4], anchors)), -1)
    xy = anchor_xy(torch.sigmoid(p[..., :2]), grid, stride, scale_x_y)
    wh = anchor_wh(p[..., 2:4], anchors, max_log)
    return torch.cat((xy, wh), -1)


def decode_cell_boxes(boxes: Tensor, size, sqrt: bool) -> Tensor:
    """YOLOv1 ``[detection]`` boxes ``(B, S, S, nb, >=4)`` = ``(x, y)`` in the cell, ``(w, h)`` fractions of the
    image (square roots when ``sqrt``) -> ``[cx, cy, w, h]`` in units of ``size = (width, height)`` (pass
    ``(1, 1)`` for image fractions). The one decoding for the head and the v1 loss."""
    s = boxes.shape[1]
    size = torch.as_tensor(size, device=boxes.device, dtype=boxes.dtype)
    grid = cell_grid(s, s, boxes.device, boxes.dtype).view(1, s, s, 1, 2)
    xy = (boxes[..., :2] + grid) / s * size
    wh = boxes[..., 2:4] ** 2 if sqrt else boxes[..., 2:4]
    return torch.cat((xy, wh * size), -1)


class _Grid(nn.Module):
    """Caches the ``(1, 1, H, W, 2)`` cell-offset grid ``[col, row]`` for the last feature size seen."""

    def __init__(self):
        super().__init__()
        self._key = None
        self._grid = None

    def grid(self, h: int, w: int, device, dtype) -> Tensor:
        key = (h, w, device, dtype)
        if self._key != key:
            self._grid = cell_grid(h, w, device, dtype).view(1, 1, h, w, 2)
            self._key = key
        return self._grid


class YoloHead(_Grid):
    """``[yolo]`` head: see the module docstring for the raw layout and the decoding."""

    def __init__(self, anchors: list[tuple[float, float]], num_classes: int, scale_x_y: float = 1.0,
                 new_coords: bool = False):
        super().__init__()
        self.num_anchors, self.num_classes, self.scale_x_y = len(anchors), num_classes, scale_x_y
        self.new_coords = new_coords
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32).view(-1, 2),
                             persistent=False)

    def forward(self, x: Tensor, input_hw: tuple[int, int]) -> Tensor:
        b, _, h, w = x.shape
        p = x.view(b, self.num_anchors, 5 + self.num_classes, h, w).permute(0, 1, 3, 4, 2)  # (B,A,H,W,5+C)
        if self.training:
            return p
        p = p.float()  # decode in fp32 even after a bf16 trunk: bf16 has 8 mantissa bits
        stride = torch.tensor([input_hw[1] / w, input_hw[0] / h], device=x.device, dtype=p.dtype)
        grid = self.grid(h, w, x.device, p.dtype)
        anchors = self.anchors.to(p.dtype).view(1, -1, 1, 1, 2)
        s = self.scale_x_y
        if self.new_coords:  # values are probabilities already (the conv before applied logistic)
            xy = anchor_xy(p[..., :2], grid, stride, s)
            wh = new_coords_wh(p[..., 2:4], anchors)
            return torch.cat((xy, wh, p[..., 4:]), -1).reshape(b, -1, 5 + self.num_classes)
        # The in-place fast path below is for eager mode; autograd and graph compilers (which fuse these
        # element-wise ops themselves, and mis-handle ``out=`` re-striding) take the functional path.
        if (torch.is_grad_enabled() and p.requires_grad) or torch.compiler.is_compiling():
            xy = anchor_xy(torch.sigmoid(p[..., :2]), grid, stride, s)
            wh = anchor_wh(p[..., 2:4], anchors)
            rest = torch.sigmoid(p[..., 4:])                           # objectness, class probabilities
            return torch.cat((xy, wh, rest), -1).reshape(b, -1, 5 + self.num_classes)
        # Without autograd: ONE pass over the map applies the sigmoid and writes the output layout; the few
        # box values are then fixed in place (fewer full-map passes = less time, most of all on a busy CPU).
        y = torch.empty(p.shape, dtype=p.dtype, device=p.device)
        torch.sigmoid(p, out=y)
        y[..., :2] = anchor_xy(y[..., :2], grid, stride, s)
        y[..., 2:4] = anchor_wh(p[..., 2:4], anchors)
        return y.view(b, -1, 5 + self.num_classes)


class GaussianYoloHead(_Grid):
    """``[Gaussian_yolo]`` head (Gaussian YOLOv3, Choi et al. 2019): per anchor ``[x, sx, y, sy, w, sw, h, sh, obj,
    classes]`` = a mean and an uncertainty for each box value. Decoded as ``[yolo]`` from the means; the class
    column is ``sigmoid(logit) * (1 - mean uncertainty)`` so that objectness x class is Darknet's score
    (gaussian_yolo_layer.c ``get_gaussian_yolo_detections``). Train mode returns ``(B, A, H, W, 9+C)`` raw."""

    def __init__(self, anchors: list[tuple[float, float]], num_classes: int, scale_x_y: float = 1.0):
        super().__init__()
        self.num_anchors, self.num_classes, self.scale_x_y = len(anchors), num_classes, scale_x_y
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32).view(-1, 2),
                             persistent=False)

    def forward(self, x: Tensor, input_hw: tuple[int, int]) -> Tensor:
        b, _, h, w = x.shape
        p = x.view(b, self.num_anchors, 9 + self.num_classes, h, w).permute(0, 1, 3, 4, 2)
        if self.training:
            return p
        p = p.float()
        stride = torch.tensor([input_hw[1] / w, input_hw[0] / h], device=x.device, dtype=p.dtype)
        grid = self.grid(h, w, x.device, p.dtype)
        xy = anchor_xy(torch.sigmoid(p[..., 0:4:2]), grid, stride, self.scale_x_y)
        wh = anchor_wh(p[..., 4:8:2], self.anchors.to(p.dtype).view(1, -1, 1, 1, 2))
        uncertainty = torch.sigmoid(p[..., 1:8:2]).mean(-1, keepdim=True)
        rest = torch.sigmoid(p[..., 8:])
        cls = rest[..., 1:] * (1 - uncertainty)
        return torch.cat((xy, wh, rest[..., :1], cls), -1).reshape(b, -1, 5 + self.num_classes)


class RegionHead(_Grid):
    """``[region]`` head (YOLOv2). ``anchors`` in grid cells, as in the cfg."""

    def __init__(self, anchors: list[tuple[float, float]], num_classes: int, softmax: bool = True):
        super().__init__()
        self.num_anchors, self.num_classes, self.softmax = len(anchors), num_classes, softmax
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32).view(-1, 2),
                             persistent=False)

    def forward(self, x: Tensor, input_hw: tuple[int, int]) -> Tensor:
        b, _, h, w = x.shape
        p = x.view(b, self.num_anchors, 5 + self.num_classes, h, w).permute(0, 1, 3, 4, 2)
        if self.training:
            return p
        p, x = p.float(), x.float()
        stride = torch.tensor([input_hw[1] / w, input_hw[0] / h], device=x.device, dtype=x.dtype)
        xy = anchor_xy(torch.sigmoid(p[..., :2]), self.grid(h, w, x.device, x.dtype), stride)
        wh = anchor_wh(p[..., 2:4], self.anchors.to(x.dtype).view(1, -1, 1, 1, 2) * stride)  # cells -> pixels
        obj = torch.sigmoid(p[..., 4:5])
        cls = torch.softmax(p[..., 5:], -1) if self.softmax else p[..., 5:]
        return torch.cat((xy, wh, obj, cls), -1).reshape(b, -1, 5 + self.num_classes)


class DetectionHead(nn.Module):
    """``[detection]`` head (YOLOv1): input is the flat output of a ``[connected]`` layer."""

    def __init__(self, side: int, num_boxes: int, num_classes: int, sqrt: bool = True, softmax: bool = False):
        super().__init__()
        self.side, self.num_boxes, self.num_classes = side, num_boxes, num_classes
        self.sqrt, self.softmax = sqrt, softmax

    def raw(self, x: Tensor) -> Tensor:
        """Darknet's flat ``[S*S*C | S*S*nb conf | S*S*nb*4 coords]`` -> ``(B, S, S, nb*5 + C)``."""
        b, s, nb, c = x.shape[0], self.side, self.num_boxes, self.num_classes
        x = x.flatten(1)
        cls = x[:, : s * s * c].reshape(b, s, s, c)
        conf = x[:, s * s * c: s * s * (c + nb)].reshape(b, s, s, nb, 1)
        coords = x[:, s * s * (c + nb):].reshape(b, s, s, nb, 4)
        return torch.cat((torch.cat((coords, conf), -1).flatten(3), cls), -1)

    def forward(self, x: Tensor, input_hw: tuple[int, int]) -> Tensor:
        p = self.raw(x)
        if self.training:
            return p
        p, x = p.float(), x.float()
        b, s, nb, c = p.shape[0], self.side, self.num_boxes, self.num_classes
        boxes = p[..., : nb * 5].reshape(b, s, s, nb, 5)
        cls = p[..., nb * 5:]
        if self.softmax:
            cls = torch.softmax(cls, -1)
        xywh = decode_cell_boxes(boxes, (input_hw[1], input_hw[0]), self.sqrt)
        cls = cls.unsqueeze(3).expand(b, s, s, nb, c)
        return torch.cat((xywh, boxes[..., 4:5], cls), -1).reshape(b, -1, 5 + c)
