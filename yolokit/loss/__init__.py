"""Losses and target assignment for YOLO heads.

* :class:`YoloV1Loss` -- ``[detection]`` heads (YOLOv1 sum-squared error on an ``S x S`` grid).
* :class:`YoloLoss` -- ``[region]`` (YOLOv2) and ``[yolo]`` (YOLOv3) anchor heads.
* :func:`build_loss` -- the right one for a model's ``heads``.

Both take the raw train-mode outputs of the model and targets ``[M, 6]`` = (batch_index, class, x1, y1,
x2, y2) in network pixels, and return ``(total, {"box", "obj", "noobj", "cls"})``.
"""

from __future__ import annotations

from yolokit.loss.targets import assign_anchors, encode_grid
from yolokit.loss.v1 import YoloV1Loss
from yolokit.loss.yolo import BOX_LOSSES, YoloLoss, decode_boxes, encode_anchor_targets, head_value

__all__ = ["YoloV1Loss", "YoloLoss", "build_loss", "assign_anchors", "encode_grid",
           "decode_boxes", "encode_anchor_targets", "BOX_LOSSES"]


def build_loss(heads, img_size: tuple[int, int] | None = None, **kwargs):
    """The loss for a model's head specs (``model.heads``).

    ``kwargs`` go to the loss: for v1 ``lambda_coord``, ``lambda_noobj``, ...; for v2/v3 ``box_loss``,
    ``lambda_box``, ``ignore_thresh``, ... Keys that the chosen loss does not take are an error.
    """
    kinds = {head_value(h, "kind") for h in heads}
    if kinds == {"detection"}:
        if len(heads) != 1:
            raise ValueError("a YOLOv1 model has exactly one [detection] head")
        h = heads[0]
        return YoloV1Loss(num_boxes=int(head_value(h, "num_boxes", head_value(h, "num", 2))),
                          num_classes=int(head_value(h, "num_classes")), img_size=img_size,
                          rescore=bool(float(head_value(h, "rescore", 1))),
                          softmax=bool(float(head_value(h, "softmax", 0))),
                          sqrt=bool(float(head_value(h, "sqrt", 1))), **kwargs)
    if kinds <= {"yolo", "region"} and kinds:
        return YoloLoss(heads, **kwargs)
    raise ValueError(f"no loss for head kinds {sorted(map(str, kinds))}")
