"""Annotating images with detections (OpenCV drawing, in place, BGR)."""

from __future__ import annotations

import colorsys

import numpy as np


def class_color(c: int) -> tuple[int, int, int]:
    """A stable, well-separated BGR colour for class ``c`` (golden-ratio hue steps)."""
    r, g, b = colorsys.hsv_to_rgb((c * 0.618033988749895) % 1.0, 0.85, 0.95)
    return int(b * 255), int(g * 255), int(r * 255)


def line_style(image: np.ndarray) -> tuple[int, float]:
    """``(thickness, font_scale)`` that follow the image size, so labels stay legible on 240p and 4K alike."""
    h, w = image.shape[:2]
    return max(1, round(min(h, w) / 300)), max(0.35, min(h, w) / 900)


def label_of(c: int, class_names: list[str] | None) -> str:
    """The class name of index ``c``, or the index itself when there is no name for it."""
    return class_names[c] if class_names is not None and 0 <= c < len(class_names) else str(c)


def draw_box(image: np.ndarray, box, label: str, color, thickness: int, font_scale: float) -> None:
    """One xyxy ``box`` with a filled ``label`` tag above it (inside it when the box touches the top edge)."""
    import cv2

    x1, y1, x2, y2 = box
    p1 = (int(round(x1)), int(round(y1)))
    p2 = (int(round(x2)), int(round(y2)))
    cv2.rectangle(image, p1, p2, color, thickness, cv2.LINE_AA)
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
    top = p1[1] - th - base - 2 if p1[1] - th - base - 2 >= 0 else p1[1]
    cv2.rectangle(image, (p1[0], top), (p1[0] + tw + 2, top + th + base + 2), color, -1)
    cv2.putText(image, label, (p1[0] + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                (0, 0, 0), thickness, cv2.LINE_AA)


def draw_detections(image: np.ndarray, dets, class_names: list[str] | None = None) -> np.ndarray:
    """Draw boxes and ``"name score"`` labels on ``image`` (HxWx3 uint8 BGR, modified in place).

    dets: [K, 6] array or tensor ``[x1, y1, x2, y2, score, class]`` in pixels of ``image``.
    """
    dets = np.asarray(dets.cpu() if hasattr(dets, "cpu") else dets, dtype=np.float32).reshape(-1, 6)
    thickness, font_scale = line_style(image)
    for x1, y1, x2, y2, score, cls in dets:
        c = int(cls)
        draw_box(image, (x1, y1, x2, y2), f"{label_of(c, class_names)} {score:.2f}", class_color(c), thickness,
                 font_scale)
    return image
