"""The detector contract: what every model yolokit loads offers, whatever built it.

A :class:`Detector` is an ``nn.Module`` that takes ``(B, 3, H, W)`` RGB in [0, 1] and, in eval mode, returns
decoded ``(B, N, 5+C)`` rows ``[cx, cy, w, h (input pixels), objectness, class probabilities]``. Darknet cfg models
(:class:`~yolokit.models.darknet.DarknetModel`), torchvision-backbone models (:class:`~yolokit.models.tv.TvYolo`),
ONNX files (:class:`~yolokit.models.onnx.OnnxModel`) and what ``optimize_for_inference`` returns for each of them
all subclass it, so a command never has to ask a model what it can do (no ``hasattr`` probing):

    model.predict(images, conf=0.25)      # [(K, 6) x1 y1 x2 y2 score class] per image, image pixels
    model.optimize_for_inference()        # the fastest equivalent Detector for inference
    model.heads, model.num_classes, model.class_names, model.settings, model.input_size, model.to(device)

:class:`StagedPredictor` is the shape of image -> detections in named stages (``preprocess`` / ``infer`` /
``postprocess``) that the video pipeline runs on separate threads; :class:`yolokit.models.predict.Predictor` (YOLO)
and :class:`yolokit.hog.predict.HogPredictor` (HOG+SVM) both have it.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn


class Detector(nn.Module):
    """Base class of every yolokit model; see the module docstring.

    Attributes every subclass sets in ``__init__``:
        input_size: ``(height, width)``, the network's default input.
        heads: list of :class:`~yolokit.models.heads.HeadSpec` in output order (None for an ONNX file exported
            without them).
        class_names: list of names, or None.
        settings: prediction settings a checkpoint carries (``imgsz``, ``conf``, ``iou``, ``max_det``): the
            defaults of ``predict`` / ``eval`` / ``detect``.
    """

    input_size: tuple[int, int] = (416, 416)
    heads: list | None = None
    class_names: list[str] | None = None
    settings: dict
    #: Whether ``infos`` holds per-layer rows with each layer's input shape (``in_shape``), which the fused oneDNN
    #: fast path packs each convolution's weights for (a Darknet cfg model's layer table).
    layer_table: bool = False

    @property
    def num_classes(self) -> int | None:
        """Classes of the first head (every head has the same); None when the model carries no heads."""
        return self.heads[0].num_classes if self.heads else None

    def predict(self, images, **kwargs) -> list[Tensor]:
        """Detect objects in HxWx3 uint8 RGB images (or one): a list of ``(K, 6)`` ``[x1, y1, x2, y2, score,
        class]`` in each image's pixels. Keyword arguments (``conf``, ``iou``, ``imgsz``, ``max_det``,
        ``classes``, ``letterbox``, ``agnostic``, ``tta``) are :class:`yolokit.models.predict.Predictor`'s;
        unset thresholds and size come from :attr:`settings`, else the detection defaults."""
        from yolokit.models.predict import Predictor

        return Predictor(self, **kwargs)(images)

    def optimize_for_inference(self, channels_last: bool | None = None, fuse: bool | None = None,
                               dtype: torch.dtype = torch.float32, backend: str = "auto") -> "Detector":
        """The fastest equivalent Detector for inference (ONNX Runtime on CPU when installed, else an eval-mode
        torch copy with batch-norm folded and oneDNN fusion where the layers allow it). Torch models get it from
        :class:`yolokit.models.fastpath.Optimizable` (:func:`yolokit.models.fastpath.optimize`); already-optimised
        detectors return themselves."""
        raise NotImplementedError(f"{type(self).__name__} does not implement optimize_for_inference")


@runtime_checkable
class StagedPredictor(Protocol):
    """Image -> detections in named stages, so a pipeline can time them and run them on separate threads.
    ``__call__(images)`` is ``postprocess(infer(preprocess(images)), batch)``."""

    class_names: list[str] | None

    def preprocess(self, images: Sequence[np.ndarray]) -> Any: ...

    def infer(self, batch: Any) -> Any: ...

    def postprocess(self, pred: Any, batch: Any) -> list[Tensor]: ...

    def __call__(self, images: Sequence[np.ndarray]) -> list[Tensor]: ...
