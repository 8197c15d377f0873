"""The YOLOv2 / YOLOv3 loss for ``[region]`` and ``[yolo]`` heads.

Each head outputs raw ``[N, A, H, W, 5 + C]`` = (tx, ty, tw, th, to, class logits). Decoding, as in the
papers (YOLOv2 sec. 2 "Direct location prediction", YOLOv3 sec. 2.1):

    bx = (sigmoid(tx) * s - (s - 1) / 2 + cx) * stride        s = scale_x_y (1 in the papers)
    bw = anchor_w * exp(tw)

Terms:

* **assignment** -- each truth goes to the anchor with the best *shape* IoU, in the cell holding its
  centre (:func:`yolokit.loss.targets.assign_anchors`). All ``[yolo]`` heads of a model compete for a
  truth (YOLOv3's 9 anchors over 3 scales); each ``[region]`` head has its own anchors.
* **ignore** -- a prediction that is not responsible for a truth but whose decoded box overlaps some truth
  of its image by more than ``ignore_thresh`` (0.7 in yolov3.cfg, 0.6 in yolov2's ``thresh``) gets no
  objectness loss (YOLOv3 sec. 2.1).
* **objectness** -- binary cross-entropy on ``to``: 1 for responsible slots (the IoU of their decoded box with
  the truth when the head says ``rescore=1``, as YOLOv2's cfgs do), 0 for the others.
* **term weights** -- a head's ``object_scale``, ``noobject_scale``, ``coord_scale`` and ``class_scale`` (Darknet
  ``[region]`` keys, e.g. yolov2's object_scale=5) multiply its terms, times the loss-wide ``lambda_*``.
* **class** -- binary cross-entropy per class for ``[yolo]`` (YOLOv3 sec. 2.2, multi-label); softmax
  cross-entropy for ``[region]``, whose decoding uses a softmax (YOLOv2).
* **box** -- ``box_loss="mse"``: the papers' sum-squared error on the cell offset (after the sigmoid) and
  on ``tw, th`` against ``log(truth / anchor)``, scaled by ``2 - w*h`` (w, h relative to the image) so small
  boxes weigh more, as Darknet does. ``"giou"`` / ``"ciou"``: ``1 - GIoU`` (Rezatofighi et al. 2019) or
  ``1 - CIoU`` (Zheng et al. 2020) between the decoded and the true box.

* **new_coords=1 heads** (scaled YOLOv4, YOLOv7): the raw values are already probabilities (the conv before
  applied logistic), so objectness and classes take binary cross-entropy on the probabilities, ``mse`` compares
  ``v_xy * s - (s - 1)/2`` with the cell offset and ``v_wh`` with ``sqrt(truth / (4 anchor))`` (Darknet's
  ``delta_yolo_box``), and the IoU losses use the ``(2 v)^2 * anchor`` decoding.

**Defaults from the cfg** (:func:`cfg_loss_defaults`): an argument left ``None`` takes the heads' Darknet keys --
``iou_loss`` -> ``box_loss``, ``iou_normalizer`` -> ``lambda_box``, ``obj_normalizer`` -> ``lambda_obj`` and
``lambda_noobj``, ``cls_normalizer`` -> ``lambda_cls``, ``iou_thresh`` -> ``iou_thresh``, ``label_smooth_eps`` ->
``label_smooth`` (``ignore_thresh`` is per head) -- else yolokit's defaults (mse, 1, 1, 1, 1, assignment to the
best anchor only, no smoothing). :attr:`YoloLoss.sources` says where each value came from.

Every term is summed over the batch and divided by the batch size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from yolokit.loss.targets import Assignment, assign_anchors
from yolokit.models.heads import decode_anchor_boxes
from yolokit.ops.boxes import (box_iou, cxcywh_to_xyxy, elementwise_ciou, elementwise_diou, elementwise_giou,
                               elementwise_iou, xyxy_to_cxcywh)

BOX_LOSSES = ("mse", "iou", "giou", "diou", "ciou")
_MAX_EXP = math.log(1e4)  # clamp tw/th before exp so a diverging prediction cannot overflow


def head_value(head, key: str, default=None):
    """Read ``key`` from a head spec (``model.heads[i]``: a :class:`yolokit.models.heads.HeadSpec` or a
    mapping). Keys the spec does not carry as fields are looked up in its ``options`` (the remaining cfg
    keys, as text; numbers are converted)."""
    if isinstance(head, dict):
        value, options = head.get(key), head.get("options") or {}
    else:
        value, options = getattr(head, key, None), getattr(head, "options", None) or {}
    if value is None and key in options:
        value = options[key]
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
    return default if value is None else value


def _scalar_stride(stride) -> float:
    """Head specs give ``(sy, sx)``; Darknet nets downsample both axes alike."""
    if isinstance(stride, (tuple, list)):
        if len(set(float(s) for s in stride)) != 1:
            raise ValueError(f"non-square stride {tuple(stride)} is not supported by the loss")
        stride = stride[0]
    return float(stride)


@dataclass
class HeadInfo:
    """What the loss needs to know about one anchor head (read once from ``model.heads``)."""

    kind: str  # "yolo" or "region"
    anchors: Tensor  # [A, 2] (w, h) network pixels
    stride: float
    num_classes: int
    scale_x_y: float = 1.0
    ignore_thresh: float = 0.7
    rescore: bool = False  # objectness target = IoU of the responsible box (YOLOv2's rescore=1) instead of 1
    # Darknet's per-head term weights (object_scale, noobject_scale, coord_scale, class_scale); 1 if absent
    object_scale: float = 1.0
    noobject_scale: float = 1.0
    coord_scale: float = 1.0
    class_scale: float = 1.0
    new_coords: bool = False  # [yolo] new_coords=1: raw values are probabilities, wh = (2v)^2 * anchor

    @classmethod
    def from_spec(cls, head) -> "HeadInfo":
        kind = head_value(head, "kind")
        if kind not in ("yolo", "region"):
            raise ValueError(f"YoloLoss handles 'yolo' and 'region' heads, got {kind!r}")
        anchors = torch.as_tensor(head_value(head, "anchors"), dtype=torch.float32).reshape(-1, 2)
        thresh = head_value(head, "ignore_thresh", None)
        if thresh is None:
            thresh = head_value(head, "thresh", 0.6 if kind == "region" else 0.7)
        return cls(kind=kind, anchors=anchors, stride=_scalar_stride(head_value(head, "stride")),
                   num_classes=int(head_value(head, "num_classes")),
                   scale_x_y=float(head_value(head, "scale_x_y", 1.0) or 1.0), ignore_thresh=float(thresh),
                   rescore=bool(float(head_value(head, "rescore", 0))),
                   new_coords=bool(float(head_value(head, "new_coords", 0) or 0)),
                   **{k: float(head_value(head, k, 1.0)) for k in
                      ("object_scale", "noobject_scale", "coord_scale", "class_scale")})


#: Darknet [yolo] key -> YoloLoss argument (the loss-side meaning of a cfg's training keys).
CFG_LOSS_KEYS = {"iou_loss": "box_loss", "iou_normalizer": "lambda_box", "obj_normalizer": "lambda_obj",
                 "cls_normalizer": "lambda_cls", "iou_thresh": "iou_thresh", "label_smooth_eps": "label_smooth"}
_LOSS_DEFAULTS = {"box_loss": "mse", "lambda_box": 1.0, "lambda_obj": 1.0, "lambda_noobj": 1.0, "lambda_cls": 1.0,
                  "iou_thresh": 1.0, "label_smooth": 0.0}


def cfg_loss_defaults(heads) -> dict[str, tuple[object, str]]:
    """``{YoloLoss argument: (value, where)}`` from the heads' Darknet keys (the first head that sets a key wins,
    as :func:`yolokit.models.cfg.training_recipe` reads them); ``where`` is ``"cfg [yolo] <key>"``.
    ``obj_normalizer`` sets both objectness weights (Darknet scales all objectness deltas by it)."""
    out: dict[str, tuple[object, str]] = {}
    for head in heads:
        for key, arg in CFG_LOSS_KEYS.items():
            value = head_value(head, key)
            if value is None or arg in out:
                continue
            if arg == "box_loss":
                value = str(value).lower()
                if value not in BOX_LOSSES:
                    raise ValueError(f"[yolo] iou_loss={value}: yolokit's losses are {', '.join(BOX_LOSSES)}")
            else:
                value = float(value)
            out[arg] = (value, f"cfg [{head_value(head, 'kind')}] {key}")
            if key == "obj_normalizer":
                out.setdefault("lambda_noobj", (value, f"cfg [{head_value(head, 'kind')}] {key}"))
    return out


class YoloLoss(nn.Module):
    """Loss for models with ``[yolo]`` / ``[region]`` heads. ``forward(outputs, targets) -> (total, parts)``.

    Args (``None``: the heads' cfg keys, see :func:`cfg_loss_defaults`, else yolokit's default):
        heads: the model's head specs (``model.heads``), in output order.
        box_loss: ``"mse"`` (the papers), ``"iou"``, ``"giou"``, ``"diou"`` or ``"ciou"`` (1 - that IoU).
        lambda_box, lambda_obj, lambda_noobj, lambda_cls: weights of the terms (default 1).
        ignore_thresh: overrides the heads' own thresholds when given.
        iou_thresh: also assign a truth to every anchor whose shape IoU exceeds this (default 1.0 = best only).
        label_smooth: class targets ``1 - eps/2`` and ``eps/2`` (Darknet's ``label_smooth_eps``; default 0).

    Attributes:
        sources: ``{argument: "argument" | "cfg [yolo] <key>" | "default"}``, where each value came from.
    """

    def __init__(self, heads, box_loss: str | None = None, lambda_box: float | None = None,
                 lambda_obj: float | None = None, lambda_noobj: float | None = None,
                 lambda_cls: float | None = None, ignore_thresh: float | None = None,
                 iou_thresh: float | None = None, label_smooth: float | None = None):
        super().__init__()
        given = {"box_loss": box_loss, "lambda_box": lambda_box, "lambda_obj": lambda_obj,
                 "lambda_noobj": lambda_noobj, "lambda_cls": lambda_cls, "iou_thresh": iou_thresh,
                 "label_smooth": label_smooth}
        from_cfg = cfg_loss_defaults(heads)
        values, self.sources = {}, {}
        for arg, value in given.items():
            if value is not None:
                values[arg], self.sources[arg] = value, "argument"
            elif arg in from_cfg:
                values[arg], self.sources[arg] = from_cfg[arg]
            else:
                values[arg], self.sources[arg] = _LOSS_DEFAULTS[arg], "default"
        box_loss, lambda_box, lambda_obj = values["box_loss"], values["lambda_box"], values["lambda_obj"]
        lambda_noobj, lambda_cls, iou_thresh = values["lambda_noobj"], values["lambda_cls"], values["iou_thresh"]
        self.label_smooth = float(values["label_smooth"])
        if box_loss not in BOX_LOSSES:
            raise ValueError(f"box_loss must be one of {BOX_LOSSES}, got {box_loss!r}")
        self.heads = [HeadInfo.from_spec(h) for h in heads]
        if ignore_thresh is not None:
            for h in self.heads:
                h.ignore_thresh = ignore_thresh
        # [yolo] heads share one anchor competition; each [region] head is its own group.
        self.groups = [0 if h.kind == "yolo" else i + 1 for i, h in enumerate(self.heads)]
        self.box_loss = box_loss
        self.lambda_box, self.lambda_obj = lambda_box, lambda_obj
        self.lambda_noobj, self.lambda_cls = lambda_noobj, lambda_cls
        self.iou_thresh = iou_thresh

    def assign(self, outputs: list[Tensor], targets: Tensor) -> list[Assignment]:
        """Truth -> anchor slot matching for these outputs (see :func:`assign_anchors`)."""
        return assign_anchors(targets, [h.anchors for h in self.heads], [h.stride for h in self.heads],
                              [tuple(o.shape[2:4]) for o in outputs], self.groups, self.iou_thresh)

    def forward(self, outputs: list[Tensor], targets: Tensor,
                img_size: tuple[int, int] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """``img_size`` is accepted for symmetry with :class:`YoloV1Loss`; the grid sizes and strides tell
        this loss everything it needs."""
        if len(outputs) != len(self.heads):
            raise ValueError(f"got {len(outputs)} outputs for {len(self.heads)} heads")
        n = outputs[0].shape[0]
        targets = targets.to(device=outputs[0].device, dtype=torch.float32)
        assignments = self.assign(outputs, targets)
        zero = outputs[0].new_zeros((), dtype=torch.float32)
        box = obj = noobj = cls = zero
        for out, head, asg in zip(outputs, self.heads, assignments):
            b, o, no, c = self._head_loss(out.float(), head, asg, targets)
            box, obj, noobj, cls = box + b, obj + o, noobj + no, cls + c
        parts = {"box": self.lambda_box * box / n, "obj": self.lambda_obj * obj / n,
                 "noobj": self.lambda_noobj * noobj / n, "cls": self.lambda_cls * cls / n}
        total = sum(parts.values())
        return total, {k: v.detach() for k, v in parts.items()}

    def _head_loss(self, p: Tensor, head: HeadInfo, asg: Assignment, targets: Tensor):
        n, na, gh, gw, _ = p.shape
        anchors = head.anchors.to(p)
        img_h, img_w = gh * head.stride, gw * head.stride
        pred_box = decode_boxes(p, anchors, head.stride, head.scale_x_y, head.new_coords)  # [N,A,H,W,4] xyxy
        # new_coords heads output probabilities (logistic in the conv before): BCE on them, not on logits
        bce = _bce_on_probs if head.new_coords else F.binary_cross_entropy_with_logits

        # Ignore mask: best IoU of each prediction with any truth of its own image.
        with torch.no_grad():
            ignore = torch.zeros(p.shape[:4], dtype=torch.bool, device=p.device)
            if targets.numel():
                truths, valid = _pad_by_image(targets, n)  # [N,T,4], [N,T]
                iou = torch.vmap(box_iou)(pred_box.reshape(n, -1, 4), truths)  # [N, A*H*W, T]
                iou = iou.masked_fill(~valid[:, None, :], 0)
                ignore = (iou.amax(-1) > head.ignore_thresh).view(n, na, gh, gw)

        pos = torch.zeros_like(ignore)
        pos[asg.b, asg.a, asg.gj, asg.gi] = True
        obj_logit = p[..., 4]
        neg = ~pos & ~ignore
        noobj = bce(obj_logit[neg], torch.zeros_like(obj_logit[neg]), reduction="sum") * head.noobject_scale
        if asg.b.numel() == 0:
            zero = p.sum() * 0.0  # keeps the graph connected for DDP
            return zero, zero, noobj, zero

        ps = p[asg.b, asg.a, asg.gj, asg.gi]  # [K, 5+C] (slots are unique after assignment)
        if head.rescore:
            with torch.no_grad():
                obj_target = elementwise_iou(pred_box[asg.b, asg.a, asg.gj, asg.gi], asg.box).clamp(0, 1)
        else:
            obj_target = torch.ones_like(ps[:, 4])
        obj = bce(ps[:, 4], obj_target, reduction="sum") * head.object_scale
        t_cxcywh = xyxy_to_cxcywh(asg.box)
        if self.box_loss == "mse":
            s = head.scale_x_y
            p_off = (ps[:, :2] if head.new_coords else ps[:, :2].sigmoid()) * s - (s - 1) / 2
            t_off = t_cxcywh[:, :2] / head.stride - torch.stack((asg.gi, asg.gj), 1).to(p)
            if head.new_coords:  # Darknet's delta_yolo_box: tw = sqrt(truth_w / (4 anchor_w)) against v_w
                t_wh = torch.sqrt(t_cxcywh[:, 2:] / (4 * anchors[asg.a]))
            else:
                t_wh = torch.log(t_cxcywh[:, 2:] / anchors[asg.a] + 1e-9)
            scale = 2 - t_cxcywh[:, 2] * t_cxcywh[:, 3] / (img_w * img_h)
            box = (scale * ((p_off - t_off) ** 2 + (ps[:, 2:4] - t_wh) ** 2).sum(1)).sum()
        else:
            fn = {"iou": elementwise_iou, "giou": elementwise_giou, "diou": elementwise_diou,
                  "ciou": elementwise_ciou}[self.box_loss]
            box = (1 - fn(pred_box[asg.b, asg.a, asg.gj, asg.gi], asg.box)).sum()
        box = box * head.coord_scale

        logits = ps[:, 5:]
        if head.kind == "region":
            cls = F.cross_entropy(logits, asg.cls, reduction="sum")
        else:
            onehot = F.one_hot(asg.cls, head.num_classes).to(logits)
            if self.label_smooth:  # Darknet: y_true = 1 - eps/2, y_false = eps/2
                onehot = onehot * (1 - self.label_smooth) + 0.5 * self.label_smooth
            cls = bce(logits, onehot, reduction="sum")
        return box, obj, noobj, cls * head.class_scale


def decode_boxes(p: Tensor, anchors: Tensor, stride: float, scale_x_y: float = 1.0,
                 new_coords: bool = False) -> Tensor:
    """Raw head output ``[N, A, H, W, 5+C]`` -> decoded boxes ``[N, A, H, W, 4]`` xyxy network pixels, through the
    heads' own decoding (:func:`yolokit.models.heads.decode_anchor_boxes`), with tw/th clamped before exp."""
    return cxcywh_to_xyxy(decode_anchor_boxes(p, anchors, stride, scale_x_y, max_log=_MAX_EXP,
                                              new_coords=new_coords))


def _bce_on_probs(prob: Tensor, target: Tensor, reduction: str = "sum") -> Tensor:
    """Binary cross-entropy of probabilities (clamped away from 0 and 1 so that the log stays finite)."""
    eps = 1e-7
    return F.binary_cross_entropy(prob.clamp(eps, 1 - eps), target, reduction=reduction)


def encode_anchor_targets(outputs_shape: list[tuple[int, ...]], loss: YoloLoss, targets: Tensor) -> list[Tensor]:
    """Dense per-head targets ``[N, A, H, W, 5 + C]`` = (cell offset x, y, tw, th, objectness, one-hot
    classes) for the slots the assignment picks, zeros elsewhere -- the YOLOv2/v3 counterpart of
    :func:`yolokit.loss.targets.encode_grid`, for inspection and tests (the loss works from the sparse
    assignment directly)."""
    dummies = [torch.empty(s, device=targets.device) for s in outputs_shape]
    result = []
    for shape, head, asg in zip(outputs_shape, loss.heads, loss.assign(dummies, targets.float())):
        t = targets.new_zeros(shape, dtype=torch.float32)
        c = xyxy_to_cxcywh(asg.box)
        t[asg.b, asg.a, asg.gj, asg.gi, 0] = c[:, 0] / head.stride - asg.gi
        t[asg.b, asg.a, asg.gj, asg.gi, 1] = c[:, 1] / head.stride - asg.gj
        t[asg.b, asg.a, asg.gj, asg.gi, 2:4] = torch.log(c[:, 2:] / head.anchors.to(c)[asg.a])
        t[asg.b, asg.a, asg.gj, asg.gi, 4] = 1.0
        t[asg.b, asg.a, asg.gj, asg.gi, 5 + asg.cls] = 1.0
        result.append(t)
    return result


def _pad_by_image(targets: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """``[M, 6]`` targets -> boxes ``[N, T, 4]`` per image (T = most truths in one image) and a validity
    mask ``[N, T]``."""
    b = targets[:, 0].long()
    counts = torch.bincount(b, minlength=n)
    t_max = int(counts.max())
    order = torch.argsort(b, stable=True)
    b_sorted = b[order]
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(b), device=b.device) - starts[b_sorted]
    boxes = targets.new_zeros((n, t_max, 4))
    valid = torch.zeros((n, t_max), dtype=torch.bool, device=targets.device)
    boxes[b_sorted, slot] = targets[order, 2:6]
    valid[b_sorted, slot] = True
    return boxes, valid
