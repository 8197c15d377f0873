"""From pictures to detections: letterbox, forward, post-process, map back; optional TTA.

:class:`Predictor` is what ``yolokit detect``, ``yolokit eval --tta`` and the video pipeline run, split
into the stages that are timed separately (preprocess, infer, postprocess).

Test-time augmentation (the lectures: "averages predictions over augmented copies of the input"), all of
it before the one NMS of :func:`yolokit.postprocess.postprocess`:

* **flip** -- the mirrored image goes through the model too, and its predictions are averaged with the
  plain ones row by row: a grid model's row (head, anchor, row, column) sees, in the mirrored input,
  the same place at column ``W-1-column`` with the same anchor (anchors are left-right symmetric), so
  boxes (mirrored back), objectness and class probabilities are averaged densely. No extra candidates
  are created, so no duplicates for the NMS to miss.
* **scales** -- other input sizes give other grids, which cannot be paired row by row; their
  predictions are mapped to the original image and concatenated with the rest before the NMS.

Measured on raccoon val (BENCHMARKS.md "tta"): the averaged flip helps AP50, the union with other
scales does not, so ``--tta`` means flip only unless scales are asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from yolokit.data.transforms import letterbox, unletterbox_boxes
from yolokit.ops.boxes import cxcywh_to_xyxy, xyxy_to_cxcywh
from yolokit.postprocess import postprocess

#: Default TTA: flip-averaged at the given size only (see the module docstring).
TTA_SCALES = (1.0,)


@dataclass
class View:
    """One input size of a batch: ``x`` (B,3,S,S) float RGB in [0,1] and how each image was letterboxed."""

    x: Tensor
    size: int
    scales: list[float]
    pads: list[tuple[float, float]]


@dataclass
class Batch:
    """A preprocessed batch: one :class:`View` per TTA scale (one without TTA) and the original (h, w)s."""

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
                          [p for v in parts for p in v.pads]))
    return Batch(views, [s for b in batches for s in b.shapes])


def _round_to_stride(size: float, stride: int = 32) -> int:
    return max(stride, int(round(size / stride)) * stride)


def mirror_rows(heads, size: int) -> Tensor:
    """Row permutation pairing a model's decoded rows with those of the mirrored input.

    ``heads``: the model's head specs (``kind``, ``stride``, ``grid``, ``num_boxes``); rows are ordered
    head by head, then anchor, row, column (``[detection]``: row, column, box). Row ``r`` of the plain
    input corresponds to row ``perm[r]`` of the mirrored one. Returns int64 ``[N]``; an involution.
    """
    perm, offset = [], 0
    for h in heads:
        if h.kind == "detection":          # fixed S x S grid, nb boxes per cell
            rows, cols = h.grid
            idx = torch.arange(rows * cols * h.num_boxes).view(rows, cols, h.num_boxes).flip(1)
        else:                              # (A, H, W) at this input size
            rows, cols = int(round(size / h.stride[0])), int(round(size / h.stride[1]))  # stride = (sy, sx)
            idx = torch.arange(h.num_boxes * rows * cols).view(h.num_boxes, rows, cols).flip(2)
        perm.append(idx.reshape(-1) + offset)
        offset += idx.numel()
    return torch.cat(perm)


class Predictor:
    """A detection model plus its pre- and post-processing, split into the timed stages.

    Args:
        model: a yolokit model; ``model(x)`` with x (B,3,H,W) RGB [0,1] returns decoded (B,N,5+C) in
            network pixels (``[cx, cy, w, h, objectness, class probs]``); ``model.heads`` for TTA's flip.
        imgsz: square network input side (a multiple of the stride, 32).
        conf, iou, max_det, classes: passed to :func:`yolokit.postprocess.postprocess`.
        bgr: True when images come from OpenCV (BGR), False for RGB (yolokit datasets).
        tta: test-time augmentation: ``tta_flip`` averages with the mirrored input, ``tta_scales`` (fractions
            of imgsz, rounded to 32) adds other sizes whose predictions join before the NMS.
    """

    def __init__(self, model, imgsz: int = 416, conf: float = 0.25, iou: float = 0.45, max_det: int = 300,
                 classes: Sequence[int] | None = None, device: str | torch.device = "cpu", bgr: bool = True,
                 tta: bool = False, tta_scales: Sequence[float] = TTA_SCALES, tta_flip: bool = True):
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.imgsz = int(imgsz)
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self.classes = list(classes) if classes is not None else None
        self.bgr = bgr
        self.tta = bool(tta)
        self.sizes = sorted({_round_to_stride(self.imgsz * s) for s in tta_scales} | {self.imgsz}, reverse=True) \
            if tta else [self.imgsz]
        self.flip = bool(tta and tta_flip)
        self.class_names = getattr(model, "class_names", None)
        self._mirror: dict[int, Tensor] = {}

    # ----------------------------------------------------------------------------- stages
    def letterbox(self, images: Sequence[np.ndarray], size: int) -> View:
        """Letterbox each HxWx3 uint8 image to ``size`` and stack to (B,3,S,S) float RGB [0,1]."""

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
        return Batch([self.letterbox(images, size) for size in self.sizes], [im.shape[:2] for im in images])

    def _flip_averaged(self, view: View) -> Tensor:
        """(pred(x) + mirrored pred(mirror(x))) / 2, row by row (module docstring)."""
        plain = self.model(view.x).float()
        mirrored = self.model(view.x.flip(-1)).float()
        if view.size not in self._mirror:
            perm = mirror_rows(self.model.heads, view.size).to(plain.device)
            if perm.numel() != plain.shape[1]:
                raise ValueError(f"TTA flip: the model's heads describe {perm.numel()} rows at {view.size}, "
                                 f"its output has {plain.shape[1]}")
            self._mirror[view.size] = perm
        mirrored = mirrored[:, self._mirror[view.size]]
        mirrored[..., 0] = view.size - mirrored[..., 0]            # cx back to the plain image
        return (plain + mirrored) / 2

    @torch.inference_mode()
    def infer(self, batch: Batch) -> Tensor:
        """Forward pass. Without TTA: (B,N,5+C) decoded predictions in network pixels. With TTA: each
        size's (flip-averaged) predictions mapped to original-image pixels, concatenated along N."""
        if not self.tta:
            return self.model(batch.x)

        merged = []
        for view in batch.views:
            pred = self._flip_averaged(view) if self.flip else self.model(view.x).float().clone()
            boxes = cxcywh_to_xyxy(pred[..., :4])
            for i, (scale, pad) in enumerate(zip(view.scales, view.pads)):
                boxes[i] = unletterbox_boxes(boxes[i], scale, pad)
            pred[..., :4] = xyxy_to_cxcywh(boxes)
            merged.append(pred)
        return torch.cat(merged, 1)

    def postprocess(self, pred: Tensor, batch: Batch) -> list[Tensor]:
        """One confidence filter + NMS, then boxes in each original image's pixels (clipped to it)."""

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
                   device: str = "cpu", scales: Sequence[float] = TTA_SCALES, flip: bool = True):
    """A ``predict_fn(images) -> list[(K,6)]`` for evaluation: RGB uint8 images in, TTA detections
    in original pixels out (the hook ``yolokit eval --tta`` uses)."""
    return Predictor(model, imgsz, conf, iou, max_det, device=device, bgr=False, tta=True, tta_scales=scales,
                     tta_flip=flip)
