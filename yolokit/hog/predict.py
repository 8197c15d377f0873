"""The HOG+SVM detector in the shape of :class:`yolokit.apps.predict.Predictor` (preprocess / infer /
postprocess, timed separately), so ``yolokit hog detect`` runs through the same pipeline, drawing, saving and
COCO-JSON code as ``yolokit detect``."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from yolokit.hog.model import HogSvmDetector


class HogPredictor:
    """Args: model; imgsz: longer image side before scanning (None: the model's); conf, iou, max_det, classes:
    passed to :func:`yolokit.postprocess.postprocess`. Images may be BGR or RGB (HOG does not care)."""

    def __init__(self, model: HogSvmDetector, imgsz: int | None = None, conf: float = 0.25, iou: float = 0.45,
                 max_det: int = 300, classes: Sequence[int] | None = None):
        self.model = model
        self.imgsz = imgsz
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self.classes = list(classes) if classes is not None else None
        self.class_names = model.class_names

    def preprocess(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        return list(images)

    def infer(self, images: list[np.ndarray]) -> list:
        """One ``(1, K, 6)`` tensor of raw windows per image (their number differs between images)."""
        return [self.model.raw_predictions(im, imgsz=self.imgsz) for im in images]

    def postprocess(self, preds: list, images: list[np.ndarray]) -> list:
        from yolokit.ops.boxes import clip
        from yolokit.postprocess import postprocess

        out = []
        for pred, image in zip(preds, images):
            det = postprocess(pred, self.conf, self.iou, self.max_det, classes=self.classes)[0]
            h, w = image.shape[:2]
            det[:, :4] = clip(det[:, :4], w, h)
            out.append(det)
        return out

    def __call__(self, images: Sequence[np.ndarray]) -> list:
        batch = self.preprocess(images)
        return self.postprocess(self.infer(batch), batch)
