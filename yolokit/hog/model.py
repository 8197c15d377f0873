"""A trained HOG + linear-SVM detector: weights, calibration, scan settings, and safe (pickle-free) I/O.

Scores are made comparable with YOLO's: the SVM margin ``s`` is mapped to ``p = sigmoid(a * s + b)`` (Platt
scaling, fitted after training on the detections it makes on its training images: ``p`` estimates the chance that
a reported box is a correct detection). The windows then enter :func:`yolokit.models.postprocess.postprocess` as
``[cx, cy, w, h, objectness = p, class probability = 1]``, so the confidence filter, NMS and evaluator are the
very same ones the YOLO models go through.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from yolokit.errors import WeightsError
from yolokit.hog.features import HogParams
from yolokit.hog.scan import pyramid_scales, scan

FORMAT = "yolokit-hog-svm-1"


@dataclass
class HogSvmDetector:
    """One-class sliding-window detector.

    Attributes:
        params: HOG geometry (``params.window`` is the scanning window, ``(w, h)`` pixels).
        weights: ``float32 [wy, wx, D]`` SVM weights as a block grid; bias: the SVM intercept.
        calib: ``(a, b)`` of the Platt sigmoid. margin: ``(mx, my)`` window pixels around the object: the
            reported box is the window inset by it (the object was placed that way when training).
        scale: pyramid ratio between levels; upscale: first level's enlargement; min_score: raw SVM
            score below which a window is never reported (keeps NMS input small); imgsz: images are resized
            so that their longer side is this many pixels before scanning (as in training; 0: native size);
            pad: mirrored border added to every pyramid level, so windows may hang over the image edge;
            min_object: smallest object searched for, as a fraction of the longer image side (sqrt of its
            area): finer pyramid levels are skipped -- the scale range, like the aspect ratio, is learned
            from the training boxes.
        class_names: one name (the class the SVM detects).
    """

    params: HogParams
    weights: np.ndarray
    bias: float
    calib: tuple[float, float] = (1.0, 0.0)
    margin: tuple[int, int] = (0, 0)
    scale: float = 1.1
    upscale: float = 1.0
    min_score: float = -1.0
    imgsz: int = 0
    pad: int = 0
    min_object: float = 0.0
    class_names: list[str] = field(default_factory=lambda: ["object"])

    def __post_init__(self):
        self.weights = np.ascontiguousarray(self.weights, np.float32)
        expect = (*self.params.window_blocks, self.params.block_dim)
        if self.weights.shape != expect:
            raise ValueError(f"weights shape {self.weights.shape} does not fit HOG params (expected {expect})")

    @property
    def num_params(self) -> int:
        """Learned numbers: SVM weights + bias (+ the 2 calibration constants)."""
        return int(self.weights.size) + 3

    def min_factor(self, longer_side: int) -> float:
        """Finest pyramid factor worth scanning in an image with this longer side (``min_object``)."""
        ww, wh = self.params.window
        inner = ((ww - 2 * self.margin[0]) * (wh - 2 * self.margin[1])) ** 0.5  # object size in the window
        return self.min_object * longer_side / inner

    def pyramid(self, size: tuple[int, int]) -> list[float]:
        """Pyramid factors for an image of ``(width, height)`` (already at the scanning size)."""
        return pyramid_scales(size, self.params.window, self.scale, self.upscale, self.pad,
                              self.min_factor(max(size)))

    def probability(self, raw: np.ndarray) -> np.ndarray:
        """Platt-calibrated probability of raw SVM scores."""
        a, b = self.calib
        return 1.0 / (1.0 + np.exp(-(a * np.asarray(raw, np.float64) + b)))

    # ------------------------------------------------------------------ detection
    def windows(self, image: np.ndarray, imgsz: int | None = None, scale: float | None = None,
                upscale: float | None = None, min_score: float | None = None):
        """Raw windows of one image, before NMS.

        Args:
            image: ``uint8 [H, W, 3]`` (RGB or BGR: HOG takes the strongest channel's gradient either way).
            imgsz: resize so that the longer side is this many pixels before building the pyramid
                (the HOG analogue of a network input size); None: the model's ``imgsz``; 0: native size.
        Returns:
            ``(boxes float32 [K, 4]`` xyxy in ``image``'s pixels (object boxes: windows minus the margin),
            ``raw scores float32 [K])``.
        """
        import cv2

        h, w = image.shape[:2]
        f = 1.0
        imgsz = self.imgsz if imgsz is None else imgsz
        if imgsz and max(h, w) != imgsz:
            f = max(h, w) / float(imgsz)
            interp = cv2.INTER_AREA if f > 1 else cv2.INTER_LINEAR
            image = cv2.resize(image, (max(1, round(w / f)), max(1, round(h / f))), interpolation=interp)
        mx, my = self.margin
        ww, wh = self.params.window
        boxes, raw = scan(image, self.weights, self.bias, self.params,
                          threshold=self.min_score if min_score is None else min_score,
                          scale=scale or self.scale, upscale=upscale or self.upscale, pad=self.pad,
                          min_factor=self.min_factor(max(image.shape[:2])))
        # the window's footprint in image pixels grows with the pyramid level: inset proportionally
        inset = np.stack([(boxes[:, 2] - boxes[:, 0]) * (mx / ww), (boxes[:, 3] - boxes[:, 1]) * (my / wh)], 1)
        boxes = np.concatenate([boxes[:, :2] + inset, boxes[:, 2:] - inset], 1) * f
        return boxes.astype(np.float32), raw

    def candidates(self, image: np.ndarray, **kwargs):
        """Scored windows of one image before the NMS: ``(boxes float32 Tensor [K, 4] xyxy image pixels,
        calibrated scores float32 Tensor [K])``; ``kwargs`` go to :meth:`windows`."""
        import torch

        boxes, raw = self.windows(image, **kwargs)
        return torch.from_numpy(boxes), torch.from_numpy(self.probability(raw).astype(np.float32))

    def predict(self, images, **kwargs):
        """Detect in a list of ``uint8 [H, W, 3]`` images (or one image); keyword arguments (``conf``, ``iou``,
        ``imgsz``, ``max_det``, ``classes``) are :class:`yolokit.hog.predict.HogPredictor`'s.

        Returns:
            list of ``(K, 6)`` float tensors ``[x1, y1, x2, y2, score, class]`` in each image's pixels, through
            the same confidence filter and NMS kernel as the YOLO models, clipped to the image.
        """
        from yolokit.hog.predict import HogPredictor

        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images]
        return HogPredictor(self, **kwargs)(images)

    # ------------------------------------------------------------------ I/O
    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` of plain arrays (no pickled objects; loads with ``allow_pickle=False``), atomically."""
        from yolokit.fileio import write_atomic

        path = Path(path)
        p = self.params
        # a file object: np.savez would append .npz to a path without that suffix
        write_atomic(path, lambda fh: np.savez(fh, format=np.array(FORMAT), weights=self.weights,
                     bias=np.float64(self.bias), calib=np.array(self.calib, np.float64),
                     window=np.array(p.window, np.int64),
                     hog=np.array([p.block, p.stride, p.cell, p.bins], np.int64),
                     margin=np.array(self.margin, np.int64),
                     scan=np.array([self.scale, self.upscale, self.min_score, self.imgsz, self.pad,
                                         self.min_object], np.float64),
                     class_names=np.array(self.class_names, dtype=str)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "HogSvmDetector":
        """Read a model written by :meth:`save`; raises :class:`WeightsError` naming the file otherwise."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                if "format" not in z.files or str(z["format"]) != FORMAT:
                    raise WeightsError(f"{path}: not a yolokit HOG+SVM model (expected format {FORMAT!r})")
                block, stride, cell, bins = (int(v) for v in z["hog"])
                params = HogParams(tuple(int(v) for v in z["window"]), block, stride, cell, bins)
                scale, upscale, min_score, imgsz, pad, min_object = (float(v) for v in z["scan"])
                return cls(params, z["weights"], float(z["bias"]), tuple(float(v) for v in z["calib"]),
                           tuple(int(v) for v in z["margin"]), scale, upscale, min_score, int(imgsz), int(pad),
                           min_object,
                           [str(v) for v in z["class_names"]])
        except FileNotFoundError as exc:
            raise WeightsError(f"{path}: model file not found") from exc
        except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:  # empty, truncated, foreign
            raise WeightsError(f"{path}: unreadable HOG+SVM model ({exc or type(exc).__name__})") from exc
