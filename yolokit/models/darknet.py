"""Darknet networks in torch: a :class:`DarknetModel` built from cfg text (the layers:
:mod:`yolokit.models.builders`; its ``.weights`` files: :mod:`yolokit.models.weights`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from yolokit.errors import ConfigError
from yolokit.models.base import Detector
from yolokit.models.builders import HEAD_KINDS, build_layers
from yolokit.models.cfg import Section, format_cfg, parse_cfg
from yolokit.models.fastpath import Optimizable
from yolokit.models.heads import nms_beta_of


class DarknetModel(Optimizable, Detector):
    """A network described by a Darknet cfg.

    ``model(x)``: ``x`` float ``(B, 3, H, W)`` RGB in [0, 1], H and W multiples of the network's total stride.
    Eval mode returns decoded ``(B, N, 5+C)`` rows (see :mod:`yolokit.models.heads`); train mode returns the list
    of raw head outputs, one per entry of :attr:`heads`.

    Attributes:
        cfg_text: the cfg this model was built from (saved in checkpoints).
        net: the ``[net]`` options as text (training hyper-parameters for a trainer that wants them).
        input_size: ``(height, width)`` from ``[net]``.
        heads: list of :class:`~yolokit.models.heads.HeadSpec`, in output order.
        infos: per-layer :class:`~yolokit.models.builders.LayerInfo` rows (shapes at ``input_size``, Darknet FLOPs).
        class_names: list of names, or None.
        weights_header: ``(major, minor, revision, seen, seen_bytes)`` of the last .weights read.
    """

    layer_table = True  # ``infos`` holds every layer's input shape (the fused fast path packs weights for them)

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
