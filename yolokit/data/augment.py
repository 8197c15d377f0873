"""Train-time augmentation: mosaic, mixup and an albumentations chain with ``BboxParams``.

Order for one training image of network size ``S`` (see :class:`yolokit.data.loader.TrainDataset`):

1. decode and resize so the long side is ``S`` (everything after runs at network resolution, cheap);
2. with probability ``mosaic``: four images around a random centre (YOLOv4, sec. 3.3), cropped to S x S;
3. albumentations: box-keeping crop, scale/translate affine, horizontal flip, colour jitter;
4. letterbox to ``S x S`` (:func:`yolokit.ops.letterbox.letterbox`, Darknet grey);
5. with probability ``mixup``: blend with another image processed the same way (Zhang et al. 2018),
   ratio ~ Beta(32, 32), boxes of both kept.

Colour jitter follows Darknet's cfg defaults (``hue=.1 saturation=1.5 exposure=1.5``): hue shifted by up
to 0.1 of the circle, saturation and brightness multiplied by a factor in [1/1.5, 1.5] (albumentations'
ColorJitter draws the factor uniformly in [0.5, 1.5], close enough and symmetric).
Boxes that keep less than ``min_visibility`` of their area after a crop, or end up under ``min_size``
pixels wide or high, are dropped (albumentations' filter) -- that is augmentation, not a data problem.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np


@dataclass
class AugmentConfig:
    """Probabilities and ranges of the train-time augmentations (all off: ``AugmentConfig.none()``)."""

    hflip: float = 0.5
    color: float = 0.8          # probability of colour jitter
    hue: float = 0.1            # fraction of the hue circle
    saturation: float = 0.5     # factor in [1 - s, 1 + s]
    brightness: float = 0.5     # factor in [1 - b, 1 + b] (Darknet 'exposure')
    affine: float = 0.5         # probability of the scale/translate affine
    scale: tuple[float, float] = (0.5, 1.5)
    translate: float = 0.1      # fraction of the image size
    degrees: float = 0.0
    shear: float = 0.0
    crop: float = 0.3           # probability of a random crop that keeps every box
    mosaic: float = 0.5
    mixup: float = 0.0
    min_visibility: float = 0.25
    min_size: float = 2.0       # pixels

    @classmethod
    def none(cls) -> "AugmentConfig":
        return cls(hflip=0, color=0, affine=0, crop=0, mosaic=0, mixup=0)


def build_albumentations(cfg: AugmentConfig, pad_value: float = 0.5):
    """The albumentations ``Compose`` for steps 3 of the module docstring (boxes ``pascal_voc`` = xyxy px)."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no PyPI version check from every worker
    import albumentations as A
    import cv2

    grey = int(round(pad_value * 255))
    ops = []
    if cfg.crop > 0:
        ops.append(A.BBoxSafeRandomCrop(erosion_rate=0.0, p=cfg.crop))
    if cfg.affine > 0:
        ops.append(A.Affine(scale=cfg.scale, translate_percent=(-cfg.translate, cfg.translate),
                            rotate=(-cfg.degrees, cfg.degrees), shear=(-cfg.shear, cfg.shear),
                            border_mode=cv2.BORDER_CONSTANT, fill=grey, p=cfg.affine))
    if cfg.hflip > 0:
        ops.append(A.HorizontalFlip(p=cfg.hflip))
    if cfg.color > 0:
        ops.append(A.ColorJitter(brightness=cfg.brightness, contrast=0.0, saturation=cfg.saturation,
                                 hue=cfg.hue, p=cfg.color))
    params = A.BboxParams(format="pascal_voc", label_fields=["labels"], min_visibility=cfg.min_visibility,
                          min_width=cfg.min_size, min_height=cfg.min_size, clip=True)
    return A.Compose(ops, bbox_params=params)


def resize_long_side(image: np.ndarray, boxes: np.ndarray, size: int):
    """Resize so that ``max(h, w) == size`` (aspect kept); boxes scaled alike."""
    import cv2

    h, w = image.shape[:2]
    r = size / max(h, w)
    if r != 1:
        image = cv2.resize(image, (max(1, round(w * r)), max(1, round(h * r))),
                           interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR)
    return image, boxes * np.float32(r)


def mosaic(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], size: int, rng: np.random.Generator,
           pad_value: float = 0.5):
    """Four ``(image, boxes, labels)`` (long side ``size``) placed around a random centre on a 2S x 2S
    canvas -- top-left, top-right, bottom-left, bottom-right -- then the S x S window centred on that
    centre is cut out. Returns ``(image [S, S, 3], boxes [N, 4], labels [N])``; boxes are clipped to the
    window, and those left with less than 2 px of width or height are dropped."""
    S = size
    canvas = np.full((2 * S, 2 * S, 3), int(round(pad_value * 255)), np.uint8)
    xc, yc = (int(v) for v in rng.uniform(0.5 * S, 1.5 * S, size=2))
    all_boxes, all_labels = [], []
    for k, (img, boxes, labels) in enumerate(parts):
        h, w = img.shape[:2]
        # (x1, y1) of the image on the canvas: each touches the centre with one corner
        x1 = xc - w if k in (0, 2) else xc
        y1 = yc - h if k in (0, 1) else yc
        cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x1 + w, 2 * S), min(y1 + h, 2 * S)
        canvas[cy1:cy2, cx1:cx2] = img[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1]
        all_boxes.append(boxes + np.array([x1, y1, x1, y1], np.float32))
        all_labels.append(labels)
    ox, oy = xc - S // 2, yc - S // 2  # the output window
    image = canvas[oy:oy + S, ox:ox + S].copy()
    boxes = np.concatenate(all_boxes).reshape(-1, 4) - np.array([ox, oy, ox, oy], np.float32)
    labels = np.concatenate(all_labels).astype(np.int64)
    boxes = np.clip(boxes, 0, S)
    keep = ((boxes[:, 2] - boxes[:, 0]) >= 2) & ((boxes[:, 3] - boxes[:, 1]) >= 2)
    return image, boxes[keep], labels[keep]


def mixup(a, b, rng: np.random.Generator):
    """Blend two ``(image, boxes, labels)`` of the same size with ratio ~ Beta(32, 32); boxes of both kept."""
    lam = rng.beta(32.0, 32.0)
    image = (a[0].astype(np.float32) * lam + b[0].astype(np.float32) * (1 - lam)).round().astype(np.uint8)
    return image, np.concatenate([a[1], b[1]]), np.concatenate([a[2], b[2]])
