"""Reference point: OpenCV's built-in Dalal-Triggs people detector (``HOGDescriptor_getDefaultPeopleDetector``,
a 64x128 window trained on INRIA Person), scored through yolokit's NMS and evaluator.

``detectMultiScale`` is called with ``groupThreshold=0`` so that it returns every window over ``hit_threshold``
with its SVM margin; yolokit's post-processor then does the NMS (OpenCV's own rectangle grouping would be a
different suppression rule). The margin ``m`` becomes a score with ``sigmoid(m)`` -- monotone, so AP is that of
the raw margins; there is no in-domain data to calibrate it on.

INRIA windows place a ~96-pixel-tall person in the 128-pixel window; ``inner=True`` reports the window inset
by 8 px left/right and 16 px top/bottom (a 48x96 box), the size of the person it was trained on.
"""

from __future__ import annotations

import numpy as np

from yolokit.ops.boxes_np import xywh_to_xyxy, xyxy_to_cxcywh


class PeopleDetector:
    """Args: hit_threshold: lowest SVM margin kept; scale: pyramid ratio; upscale: enlarge the image by this
    before scanning (the window is 128 px tall, so smaller people need it); inner: report the person box
    rather than the whole window; win_stride, padding: as in ``detectMultiScale``."""

    window = (64, 128)

    def __init__(self, hit_threshold: float = 0.0, scale: float = 1.05, upscale: float = 1.0, inner: bool = True,
                 win_stride: int = 8, padding: int = 16):
        import cv2

        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.hit_threshold, self.scale, self.upscale = hit_threshold, scale, upscale
        self.inner, self.win_stride, self.padding = inner, win_stride, padding
        self.class_names = ["person"]

    @property
    def num_params(self) -> int:
        return int(self.hog.getDescriptorSize()) + 1

    def windows(self, image: np.ndarray):
        """``(boxes float32 [K, 4]`` xyxy pixels of ``image`` -- whole windows --, ``margins float32 [K])``
        before NMS."""
        import cv2

        f = self.upscale
        if f != 1.0:
            h, w = image.shape[:2]
            image = cv2.resize(image, (round(w * f), round(h * f)), interpolation=cv2.INTER_LINEAR)
        rects, margins = self.hog.detectMultiScale(
            image, hitThreshold=self.hit_threshold, winStride=(self.win_stride,) * 2,
            padding=(self.padding,) * 2, scale=self.scale, groupThreshold=0)
        rects = np.asarray(rects, np.float32).reshape(-1, 4)
        boxes = xywh_to_xyxy(rects)
        return boxes / f, np.asarray(margins, np.float32).reshape(-1)

    def detections(self, boxes: np.ndarray, margins: np.ndarray, conf: float = 0.0, iou: float = 0.45,
                   max_det: int = 300, inner: bool | None = None):
        """Windows of one image -> ``(K, 6)`` tensor ``[x1, y1, x2, y2, sigmoid(margin), 0]`` after yolokit's
        NMS; ``inner`` (default: the detector's) insets each window to the person box."""
        import torch

        from yolokit.models.postprocess import postprocess

        if self.inner if inner is None else inner:
            inset = (boxes[:, 2:] - boxes[:, :2]) * np.array([8 / 64, 16 / 128], np.float32)  # [K, 2] (x, y)
            boxes = np.concatenate([boxes[:, :2] + inset, boxes[:, 2:] - inset], 1)
        pred = np.empty((len(boxes), 6), np.float32)
        pred[:, :4] = xyxy_to_cxcywh(boxes)
        pred[:, 4] = 1.0 / (1.0 + np.exp(-margins))
        pred[:, 5] = 1.0
        return postprocess(torch.from_numpy(pred)[None], conf_thres=conf, iou_thres=iou, max_det=max_det)[0]

    def predict(self, images, conf: float = 0.0, iou: float = 0.45, max_det: int = 300):
        """List of ``(K, 6)`` tensors ``[x1, y1, x2, y2, sigmoid(margin), 0]`` after yolokit's NMS."""
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images]
        return [self.detections(*self.windows(im), conf=conf, iou=iou, max_det=max_det) for im in images]
