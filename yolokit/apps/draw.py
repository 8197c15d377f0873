"""Annotating images with detections and tracks (OpenCV drawing, in place, BGR)."""

from __future__ import annotations

import colorsys
from collections import deque

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


class TrackDrawer:
    """Call with each frame in order: ``drawer(image, tracks [M, 7])`` draws in place and returns image.

    The trail of a track is the bottom-centre of its box (where a car or a person touches the ground) in
    the last ``trail`` frames in which it was reported. It is drawn only while the track is reported; a
    lost track's trail is kept for ``trail`` frames, so it continues if the track is found again.

    Colours follow the order in which tracks first appear (golden-ratio hue steps, as class colours),
    not the id itself: ids are spent on tentative tracks that never show, and ids that differ by a
    Fibonacci number (21, 34, 55, ...) would get nearly one hue."""

    def __init__(self, class_names: list[str] | None = None, trail: int = 20):
        self.class_names = class_names
        self.trail = int(trail)
        self.points: dict[int, deque] = {}
        self.last_seen: dict[int, int] = {}
        self.colors: dict[int, tuple[int, int, int]] = {}
        self.frame = 0

    def __call__(self, image: np.ndarray, tracks) -> np.ndarray:
        import cv2

        tracks = np.asarray(tracks, dtype=np.float64).reshape(-1, 7)
        self.frame += 1
        thickness, font_scale = line_style(image)
        for x1, y1, x2, y2, _score, _cls, tid in tracks:
            tid = int(tid)
            self.points.setdefault(tid, deque(maxlen=self.trail)).append((int(round((x1 + x2) / 2)), int(round(y2))))
            self.last_seen[tid] = self.frame
            if tid not in self.colors:
                self.colors[tid] = class_color(len(self.colors))
        for tid in [t for t, f in self.last_seen.items() if self.frame - f >= self.trail]:
            del self.points[tid], self.last_seen[tid]
        for tid in tracks[:, 6].astype(int):
            if len(self.points[tid]) > 1:
                cv2.polylines(image, [np.array(self.points[tid], dtype=np.int32)], False, self.colors[tid],
                              thickness, cv2.LINE_AA)
        for x1, y1, x2, y2, score, cls, tid in tracks:
            label = f"#{int(tid)} {label_of(int(cls), self.class_names)} {score:.2f}"
            draw_box(image, (x1, y1, x2, y2), label, self.colors[int(tid)], thickness, font_scale)
        return image
