"""From pictures to detections: letterbox, forward, post-process, map back; optional TTA.

:class:`Predictor` is what ``yolokit detect`` and the video pipeline run, split into the stages that
are timed separately (preprocess, infer, postprocess). With ``tta=True`` every image is also seen
flipped and at other scales; all predictions are mapped to the original image and merged *before*
the one NMS in :func:`yolokit.postprocess.postprocess`, so overlapping boxes from different views
vote through the NMS instead of being averaged after it (the lectures' "averages predictions over
augmented copies"; the YOLOv5-style merge).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

#: Default TTA views: (scale of imgsz, horizontal flip). Scales are rounded to the model stride.
TTA_VIEWS = ((1.0, False), (1.0, True), (0.83, False), (1.25, True))


@dataclass
class View:
    """One preprocessed view of a batch: ``x`` (B,3,S,S) float RGB in [0,1], how each image was
    letterboxed into it, and whether it is mirrored."""

    x: Tensor
    size: int
    scales: list[float]
    pads: list[tuple[float, float]]
    flip: bool = False


@dataclass
class Batch:
    """A preprocessed batch: one :class:`View` (several with TTA) and the original (h, w) per image."""

    views: list[View]
    shapes: list[tuple[int, int]]

    @property
    def x(self) -> Tensor:
        return self.views[0].x


def concat_batches(batches: Sequence[Batch]) -> Batch:
    """One batch from several preprocessed the same way (e.g. one frame each, in a reader thread)."""
    views = []
    for parts in zip(*(b.views for b in batches)):
        views.append(View(torch.cat([v.x for v in parts]), parts[0].size, [s for v in parts for s in v.scales],
                          [p for v in parts for p in v.pads], parts[0].flip))
    return Batch(views, [s for b in batches for s in b.shapes])


def _round_to_stride(size: float, stride: int = 32) -> int:
    return max(stride, int(round(size / stride)) * stride)


class Predictor:
    """A detection model plus its pre- and post-processing, split into the timed stages.

    Args:
        model: a yolokit model; ``model(x)`` with x (B,3,H,W) RGB [0,1] returns decoded (B,N,5+C) in
            network pixels (``[cx, cy, w, h, objectness, class probs]``).
        imgsz: square network input side (a multiple of the stride, 32).
        conf, iou, max_det, classes: passed to :func:`yolokit.postprocess.postprocess`.
        bgr: True when images come from OpenCV (BGR), False for RGB (yolokit datasets).
        tta: also run the views in ``tta_views`` ((scale of imgsz, horizontal flip) pairs); their
            predictions are merged before the NMS.
    """

    def __init__(self, model, imgsz: int = 416, conf: float = 0.25, iou: float = 0.45, max_det: int = 300,
                 classes: Sequence[int] | None = None, device: str | torch.device = "cpu", bgr: bool = True,
                 tta: bool = False, tta_views: Sequence[tuple[float, bool]] = TTA_VIEWS):
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.imgsz = int(imgsz)
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self.classes = list(classes) if classes is not None else None
        self.bgr = bgr
        self.views = list(tta_views) if tta else [(1.0, False)]
        self.class_names = getattr(model, "class_names", None)

    @property
    def tta(self) -> bool:
        return self.views != [(1.0, False)]

    # ----------------------------------------------------------------------------- stages
    def letterbox(self, images: Sequence[np.ndarray], size: int) -> View:
        """Letterbox each HxWx3 uint8 image to ``size`` and stack to (B,3,S,S) float RGB [0,1]."""
        from yolokit.data.transforms import letterbox

        boxed, scales, pads = [], [], []
        for image in images:
            out, scale, pad = letterbox(image, size)
            boxed.append(out)
            scales.append(float(scale))
            pads.append((float(pad[0]), float(pad[1])))
        x = torch.from_numpy(np.stack(boxed)).to(self.device)     # (B,S,S,3) uint8
        if self.bgr:
            x = x.flip(-1)                                          # BGR -> RGB
        x = x.permute(0, 3, 1, 2).float().div_(255.0).contiguous()  # (B,3,S,S)
        return View(x, size, scales, pads)

    def preprocess(self, images: Sequence[np.ndarray]) -> Batch:
        views, cache = [], {}
        for scale_factor, flip in self.views:
            size = _round_to_stride(self.imgsz * scale_factor)
            if size not in cache:
                cache[size] = self.letterbox(images, size)
            view = cache[size]
            if flip:
                view = View(view.x.flip(-1), size, view.scales, view.pads, True)  # mirror the network input
            views.append(view)
        return Batch(views, [im.shape[:2] for im in images])

    @torch.inference_mode()
    def infer(self, batch: Batch) -> Tensor:
        """Forward pass. Without TTA: (B,N,5+C) decoded predictions in network pixels. With TTA: every
        view's predictions mapped to original-image pixels and concatenated along N."""
        if not self.tta:
            return self.model(batch.x)
        from yolokit.data.transforms import unletterbox_boxes
        from yolokit.ops.boxes import cxcywh_to_xyxy, xyxy_to_cxcywh

        merged = []
        for view in batch.views:
            pred = self.model(view.x).float().clone()               # (B,N,5+C)
            boxes = cxcywh_to_xyxy(pred[..., :4])
            if view.flip:
                s = view.size
                boxes = torch.stack((s - boxes[..., 2], boxes[..., 1], s - boxes[..., 0], boxes[..., 3]), -1)
            for i, (scale, pad) in enumerate(zip(view.scales, view.pads)):
                boxes[i] = unletterbox_boxes(boxes[i], scale, pad)
            pred[..., :4] = xyxy_to_cxcywh(boxes)
            merged.append(pred)
        return torch.cat(merged, 1)

    def postprocess(self, pred: Tensor, batch: Batch) -> list[Tensor]:
        """One confidence filter + NMS, then boxes in each original image's pixels (clipped to it)."""
        from yolokit.data.transforms import unletterbox_boxes
        from yolokit.postprocess import postprocess

        dets = postprocess(pred.float(), self.conf, self.iou, self.max_det, classes=self.classes)
        view = batch.views[0]
        if self.tta:  # already in original pixels
            return [unletterbox_boxes(d, 1.0, (0, 0), shape) for d, shape in zip(dets, batch.shapes)]
        return [unletterbox_boxes(d, scale, pad, shape)
                for d, scale, pad, shape in zip(dets, view.scales, view.pads, batch.shapes)]

    # ----------------------------------------------------------------------------- whole thing
    def __call__(self, images: Sequence[np.ndarray]) -> list[Tensor]:
        """Detections for a list of HxWx3 uint8 images: list of (K,6) ``[x1,y1,x2,y2,score,class]``
        tensors in original-image pixels, sorted by score."""
        batch = self.preprocess(images)
        return self.postprocess(self.infer(batch), batch)


def tta_predict_fn(model, imgsz: int = 416, conf: float = 0.001, iou: float = 0.6, max_det: int = 300,
                   device: str = "cpu", views: Sequence[tuple[float, bool]] = TTA_VIEWS):
    """A ``predict_fn(images) -> list[(K,6)]`` for evaluation: RGB uint8 images in, TTA detections
    in original pixels out (the hook ``yolokit eval --tta`` uses)."""
    return Predictor(model, imgsz, conf, iou, max_det, device=device, bgr=False, tta=True, tta_views=views)
