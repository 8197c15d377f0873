"""The one path from pictures to detections: letterbox, forward, post-process, map back; optional TTA.

:class:`Predictor` is what every door runs: ``model.predict``, ``yolokit detect`` (images, video, streams),
the trainer's validation, ``yolokit eval --model`` (with or without TTA), ``yolokit export --check-image``,
``yolokit compare`` and the benches. It is split into the stages the video pipeline times separately
(preprocess, infer, postprocess). Input images are HxWx3 uint8 arrays as yolokit's one image reader returns
them (``yolokit.data.images.read_image``: RGB, stored pixel order, EXIF orientation ignored); output boxes are
always in the original image's pixels.

Defaults come from the model: ``model.settings`` (a checkpoint's training-time validation settings: ``imgsz``,
``conf``, ``iou``, ``max_det``), else the cfg's ``[net]`` size and :data:`DEFAULTS`. So the AP50 training reports
for ``best.pt`` is what ``yolokit eval --model best.pt`` reports with no flags.

Test-time augmentation (the lectures: "averages predictions over augmented copies of the input"), all of
it before the one NMS of :func:`yolokit.models.postprocess.postprocess`:

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

from yolokit.ops.boxes import clip
from yolokit.ops.letterbox import letterbox
from yolokit.models.postprocess import postprocess
from yolokit.models.heads import nms_beta_of
from yolokit.settings import check_fraction, check_imgsz, check_int, check_positive

#: Default TTA: flip-averaged at the given size only (see the module docstring).
TTA_SCALES = (1.0,)

#: Thresholds for a model without saved settings: detection (``yolokit detect``, ``model.predict``) and
#: evaluation (mAP needs the whole PR curve, so a low score threshold).
DEFAULTS = {"conf": 0.25, "iou": 0.45, "max_det": 300}
EVAL_DEFAULTS = {"conf": 0.001, "iou": 0.6, "max_det": 300}


def model_settings(model) -> dict:
    """The settings a model carries (a checkpoint's validation ``imgsz``/``conf``/``iou``/``max_det``); {}."""
    return dict(getattr(model, "settings", None) or {})


def default_imgsz(model) -> int:
    """The input side a model was validated at (its settings), else its cfg's ``[net]`` height."""
    size = model_settings(model).get("imgsz")
    if size:
        return int(size)
    size = getattr(model, "input_size", None)
    if isinstance(size, (tuple, list)):
        return int(size[0])
    return int(size or 416)


@dataclass
class View:
    """One input size of a batch: ``x`` (B,3,H,W) float RGB in [0,1] and how each image was mapped into it:
    ``scales[i] = (sx, sy)`` and ``pads[i] = (pad_x, pad_y)`` (network = image * s + pad)."""

    x: Tensor
    size: int
    scales: list[tuple[float, float]]
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
            network pixels (``[cx, cy, w, h, objectness, class probs]``); ``model.heads`` for TTA's flip;
            optional ``model.settings`` for the defaults (module docstring).
        imgsz: square network input side (a multiple of the stride, 32), or ``(h, w)``; None: the model's.
        conf, iou, max_det: thresholds of :func:`yolokit.models.postprocess.postprocess`; None: the model's settings,
            else ``defaults`` (:data:`DEFAULTS`; evaluation passes :data:`EVAL_DEFAULTS`).
        classes: keep only these class indices. agnostic: class-agnostic NMS.
        device: where to run; None: the model's device.
        bgr: True when images come as BGR (OpenCV frames), False for RGB (yolokit's reader and datasets).
        letterbox: keep the aspect ratio (Darknet grey padding); False = plain resize (OpenCV blobFromImage).
        tta: test-time augmentation: ``tta_flip`` averages with the mirrored input, ``tta_scales`` (fractions
            of imgsz, rounded to 32) adds other sizes whose predictions join before the NMS.
    """

    def __init__(self, model, imgsz=None, conf: float | None = None, iou: float | None = None,
                 max_det: int | None = None, classes: Sequence[int] | None = None, device=None, bgr: bool = False,
                 tta: bool = False, tta_scales: Sequence[float] = TTA_SCALES, tta_flip: bool = True,
                 letterbox: bool = True, agnostic: bool = False, defaults: dict | None = None):
        if device is None:
            device = getattr(model, "device", None) or _model_device(model)
        self.model = model.to(device) if hasattr(model, "to") else model  # infer() switches to eval mode
        self.device = torch.device(device)
        saved, fallback = model_settings(model), defaults or DEFAULTS
        if imgsz is None:
            imgsz = default_imgsz(model)
        self.shape = (int(imgsz), int(imgsz)) if isinstance(imgsz, (int, np.integer)) else \
            (int(imgsz[0]), int(imgsz[1]))
        self.imgsz = self.shape[0]
        # checked once here too, so Python callers get the command line's one-line errors (yolokit.settings)
        self.shape = tuple(check_imgsz("imgsz", v) for v in self.shape)
        self.conf = check_fraction("conf", conf if conf is not None else saved.get("conf", fallback["conf"]))
        self.iou = check_fraction("iou", iou if iou is not None else saved.get("iou", fallback["iou"]))
        max_det = max_det if max_det is not None else saved.get("max_det", fallback["max_det"])
        self.max_det = check_int("max_det", max_det, 1)
        tta_scales = tuple(check_positive("tta_scales", v) for v in tta_scales)
        self.classes = list(classes) if classes is not None else None
        self.agnostic = bool(agnostic)
        self.bgr = bgr
        self.boxed = bool(letterbox)
        self.tta = bool(tta)
        if self.tta and self.shape[0] != self.shape[1]:
            raise ValueError(f"TTA needs a square input size, got {self.shape}")
        self.sizes = sorted({_round_to_stride(self.imgsz * s) for s in tta_scales} | {self.imgsz}, reverse=True) \
            if tta else [self.imgsz]
        self.flip = bool(tta and tta_flip)
        self.class_names = getattr(model, "class_names", None)
        self._mirror: dict[int, Tensor] = {}
        prepare = getattr(self.model, "prepare", None)    # a per-shape engine (OrtFastPath): build it up front
        if prepare is not None:
            prepare([self.shape if size == self.imgsz else (size, size) for size in self.sizes])

    # ----------------------------------------------------------------------------- stages
    def letterbox(self, images: Sequence[np.ndarray], size: int) -> View:
        """Letterbox (or resize) each HxWx3 uint8 image to the network size and stack to (B,3,H,W) RGB [0,1]."""
        import cv2

        shape = self.shape if size == self.imgsz else (size, size)
        boxed, scales, pads = [], [], []
        for image in images:
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"expected HxWx3 uint8 images, got {image.shape} {image.dtype}")
            if self.boxed:
                out, scale, pad = letterbox(image, shape)
                scales.append((float(scale), float(scale)))
                pads.append((float(pad[0]), float(pad[1])))
            else:
                h0, w0 = image.shape[:2]
                out = cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
                scales.append((shape[1] / w0, shape[0] / h0))
                pads.append((0.0, 0.0))
            boxed.append(out)
        x = torch.from_numpy(np.stack(boxed)).to(self.device)     # (B,H,W,3) uint8
        if self.bgr:
            x = x.flip(-1)                                          # BGR -> RGB
        x = x.permute(0, 3, 1, 2).float().div_(255.0).contiguous()  # (B,3,H,W)
        return View(x, size, scales, pads)

    def preprocess(self, images: Sequence[np.ndarray]) -> Batch:
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images]
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
        """Forward pass: (B,N,5+C) decoded predictions ``[cx, cy, w, h, obj, probs]`` with boxes in each ORIGINAL
        image's pixels (the one output frame of this class). With TTA, every size's (flip-averaged) predictions,
        concatenated along N."""
        was_training = getattr(self.model, "training", False)
        if was_training:
            self.model.eval()
        try:
            merged = []
            for view in batch.views:
                pred = self._flip_averaged(view) if self.flip else self.model(view.x).float()
                merged.append(_pred_to_image(pred, view))
            return merged[0] if len(merged) == 1 else torch.cat(merged, 1)
        finally:
            if was_training:
                self.model.train()

    def postprocess(self, pred: Tensor, batch: Batch) -> list[Tensor]:
        """One confidence filter + NMS over :meth:`infer`'s predictions, boxes clipped to each image."""
        dets = postprocess(pred.float(), self.conf, self.iou, self.max_det, agnostic=self.agnostic,
                           classes=self.classes, nms_beta=nms_beta_of(getattr(self.model, "heads", None) or []))
        for d, (h, w) in zip(dets, batch.shapes):
            d[:, :4] = clip(d[:, :4], w, h)
        return dets

    # ----------------------------------------------------------------------------- whole thing
    def __call__(self, images: Sequence[np.ndarray]) -> list[Tensor]:
        """Detections for a list of HxWx3 uint8 images (or one): list of (K,6) ``[x1,y1,x2,y2,score,class]``
        tensors in original-image pixels, sorted by score."""
        batch = self.preprocess(images)
        return self.postprocess(self.infer(batch), batch)


def _model_device(model) -> torch.device:
    """Where a torch model's weights are (CPU for a model without any)."""
    for t in (*model.parameters(), *model.buffers()) if hasattr(model, "parameters") else ():
        return t.device
    return torch.device("cpu")


def _pred_to_image(pred: Tensor, view: View) -> Tensor:
    """Map ``(B, N, 5+C)`` predictions from network pixels to each image's: ``c = (c - pad) / scale``,
    ``wh = wh / scale`` per axis (the exact inverse of the letterbox or plain resize). NMS is unchanged by it:
    IoU is invariant under per-axis scaling and translation."""
    scale = torch.tensor(view.scales, device=pred.device, dtype=pred.dtype).unsqueeze(1)  # (B,1,2) sx, sy
    pad = torch.tensor(view.pads, device=pred.device, dtype=pred.dtype).unsqueeze(1)      # (B,1,2)
    out = pred.clone()
    out[..., 0:2] = (pred[..., 0:2] - pad) / scale
    out[..., 2:4] = pred[..., 2:4] / scale
    return out
