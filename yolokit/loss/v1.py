"""The YOLOv1 loss (Redmon et al. 2016, sec. 2.2, eq. 3).

Sum-squared error over the ``S x S x (B*5 + C)`` output, with

* ``lambda_coord = 5`` on the box terms of the responsible predictor,
* ``lambda_noobj = 0.5`` on the confidence of every predictor that is not responsible for an object,
* square roots of width and height, so that an error on a small box costs more than on a big one,
* the responsible predictor of a cell = the one of its B whose box has the highest IoU with the truth,
* the class scores of a cell regressed only where an object's centre falls in that cell.

The network regresses (x, y) relative to the cell and (sqrt w, sqrt h) relative to the image directly
(Darknet's ``[detection]`` layer with ``sqrt=1``: linear outputs, ``w = out**2`` when decoding).
The target confidence is the IoU of the responsible predictor's box with the truth (``rescore=1``,
the paper's "confidence = Pr(object) * IOU"), or 1 with ``rescore=False``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from yolokit.loss.targets import encode_grid
from yolokit.models.heads import decode_cell_boxes
from yolokit.ops.boxes import cxcywh_to_xyxy, elementwise_iou


class YoloV1Loss(nn.Module):
    """Loss for a ``[detection]`` head. ``forward(outputs, targets) -> (total, parts)``.

    ``outputs`` is the list the model returns in train mode (one tensor ``[N, S, S, B*5 + C]``, raw);
    ``targets`` is ``[M, 6]`` (batch_index, class, x1, y1, x2, y2) network pixels. ``total`` is the sum
    over the batch divided by the batch size (Darknet divides the learning rate by the batch instead,
    which is the same update); ``parts`` holds the detached named terms.
    """

    def __init__(self, num_boxes: int, num_classes: int, img_size: tuple[int, int] | None = None,
                 lambda_coord: float = 5.0, lambda_noobj: float = 0.5, lambda_obj: float = 1.0,
                 lambda_cls: float = 1.0, rescore: bool = True, softmax: bool = False, sqrt: bool = True):
        super().__init__()
        self.num_boxes = num_boxes
        self.num_classes = num_classes
        self.img_size = img_size
        self.lambda_coord = lambda_coord
        self.lambda_noobj = lambda_noobj
        self.lambda_obj = lambda_obj
        self.lambda_cls = lambda_cls
        self.rescore = rescore
        self.softmax = softmax
        self.sqrt = sqrt

    def forward(self, outputs: list[Tensor] | Tensor, targets: Tensor,
                img_size: tuple[int, int] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        pred = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        n, s = pred.shape[0], pred.shape[1]
        nb, nc = self.num_boxes, self.num_classes
        if pred.shape[-1] != nb * 5 + nc:
            raise ValueError(f"YOLOv1 output has {pred.shape[-1]} values per cell, expected B*5+C = "
                             f"{nb}*5+{nc} = {nb * 5 + nc}")
        img_size = img_size or self.img_size
        if img_size is None:
            raise ValueError("YoloV1Loss needs img_size (network input height, width)")
        pred = pred.float()
        target = encode_grid(targets.to(pred), n, s, nb, nc, img_size)
        if not self.sqrt:  # the network regresses w, h themselves (Darknet's sqrt=0)
            for k in range(nb):
                target[..., k * 5 + 2:k * 5 + 4] = target[..., k * 5 + 2:k * 5 + 4] ** 2

        p_box = pred[..., : nb * 5].reshape(n, s, s, nb, 5)  # [N,S,S,B,(x,y,sqrt w,sqrt h,conf)]
        p_cls = pred[..., nb * 5:]
        if self.softmax:
            p_cls = p_cls.softmax(-1)
        t_box = target[..., :5]  # [N,S,S,5] (the B copies are equal)
        t_cls = target[..., nb * 5:]
        has_obj = t_box[..., 4] > 0  # [N,S,S]

        # Responsible predictor: highest IoU with the truth in the cell. At the start of training every IoU
        # may be 0; the small distance term then picks the nearest box instead of always predictor 0
        # (Darknet breaks the tie the same way, by RMSE).
        with torch.no_grad():
            p_xyxy = self._to_xyxy(p_box[..., :4], s, self.sqrt)
            t_xyxy = self._to_xyxy(t_box[..., None, :4].expand_as(p_box[..., :4]), s, self.sqrt)
            iou = elementwise_iou(p_xyxy.reshape(-1, 4), t_xyxy.reshape(-1, 4)).view(n, s, s, nb)
            dist = (p_box[..., :4] - t_box[..., None, :4]).pow(2).sum(-1).sqrt()
            best = (iou - 1e-6 * dist).argmax(-1)  # [N,S,S]
            resp = nn.functional.one_hot(best, nb).bool() & has_obj[..., None]  # [N,S,S,B]

        coord = (p_box[..., :4] - t_box[..., None, :4]).pow(2).sum(-1)[resp].sum()
        conf_target = iou[resp] if self.rescore else torch.ones_like(iou[resp])
        obj = (p_box[..., 4][resp] - conf_target).pow(2).sum()
        noobj = p_box[..., 4][~resp].pow(2).sum()
        cls = (p_cls - t_cls).pow(2).sum(-1)[has_obj].sum()

        parts = {"box": self.lambda_coord * coord / n, "obj": self.lambda_obj * obj / n,
                 "noobj": self.lambda_noobj * noobj / n, "cls": self.lambda_cls * cls / n}
        total = sum(parts.values())
        return total, {k: v.detach() for k, v in parts.items()}

    @staticmethod
    def _to_xyxy(box: Tensor, s: int, sqrt: bool) -> Tensor:
        """``(N, S, S, B, 4)`` (x, y) in the cell, (sqrt w, sqrt h) of the image -> xyxy in image units ``[0, 1]``,
        through the head's own decoding (:func:`yolokit.models.heads.decode_cell_boxes`)."""
        return cxcywh_to_xyxy(decode_cell_boxes(box, (1.0, 1.0), sqrt))
