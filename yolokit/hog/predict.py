"""The HOG+SVM detector in the shape of :class:`yolokit.models.predict.Predictor` (preprocess / infer /
postprocess, timed separately), so ``yolokit hog detect`` runs through the same pipeline, drawing, saving and
COCO-JSON code as ``yolokit detect``. A sliding window has no grid to decode: its windows are already xyxy boxes in
image pixels, so they go straight to the NMS kernel the YOLO post-processor uses (:func:`yolokit.ops.nms.
nms_xyxy`), with the same ``conf`` / ``iou`` / ``max_det`` / ``classes`` meanings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # HogSvmDetector.predict builds a HogPredictor: at run time only the model imports this module
    from yolokit.hog.model import HogSvmDetector


class HogPredictor:
    """Args: model; imgsz: longer image side before scanning (None: the model's); conf, iou, max_det, classes:
    passed to :func:`yolokit.models.postprocess.postprocess`. Images may be BGR or RGB (HOG does not care)."""

    def __init__(self, model: HogSvmDetector, imgsz: int | None = None, conf: float | None = None,
                 iou: float | None = None, max_det: int | None = None, classes: Sequence[int] | None = None):
        from yolokit.models.predict import DEFAULTS

        self.model = model
        self.imgsz = imgsz
        self.conf = DEFAULTS["conf"] if conf is None else float(conf)
        self.iou = DEFAULTS["iou"] if iou is None else float(iou)
        self.max_det = DEFAULTS["max_det"] if max_det is None else int(max_det)
        self.classes = list(classes) if classes is not None else None
        self.class_names = model.class_names

    def preprocess(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        return list(images)

    def infer(self, images: list[np.ndarray]) -> list:
        """Per image, the scored windows ``(boxes [K, 4] xyxy, scores [K])`` (their number differs)."""
        return [self.model.candidates(im, imgsz=self.imgsz) for im in images]

    def postprocess(self, preds: list, images: list[np.ndarray]) -> list:
        """Score filter, NMS, ``max_det`` and ``classes`` (a HOG model has one class, index 0); clipped boxes."""
        import torch

        from yolokit.ops.boxes import clip
        from yolokit.ops.nms import nms_xyxy

        out = []
        for (boxes, scores), image in zip(preds, images):
            keep = scores > self.conf
            boxes, scores = boxes[keep], scores[keep]
            labels = torch.zeros_like(scores)
            if self.classes is not None and 0 not in self.classes:
                boxes, scores, labels = boxes[:0], scores[:0], labels[:0]
            order = nms_xyxy(boxes, scores, labels, self.iou)[: self.max_det]
            h, w = image.shape[:2]
            det = torch.cat([clip(boxes[order], w, h), scores[order, None], labels[order, None]], 1)
            out.append(det)
        return out

    def __call__(self, images: Sequence[np.ndarray]) -> list:
        batch = self.preprocess(images)
        return self.postprocess(self.infer(batch), batch)
