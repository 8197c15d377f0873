"""Annotating images with detections and tracks (OpenCV drawing, in place, BGR)."""

from __future__ import annotations

import colorsys
from collections import deque

import numpy as np


def class_color(c: int) -> tuple[int, int, int]:
    """A stable, well-separated BGR colour for class ``c`` (golden-ratio hue steps)."""
    r, g, b = colorsys.hsv_to_rgb((c * 0.618033988749895) % 1.0, 0.85, 0.95)
    return int(b * 255), int(g * 255), int(r * 255)


#: Label text height as a fraction of the frame's shorter side, and its floor in pixels (below ~7 px Hershey text
#: is unreadable). 240p: 7 px; 576p: 13 px; 1080p: 24 px.
TEXT_FRACTION, MIN_TEXT_PX = 0.022, 7
_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX, without importing cv2 at module level
_FONT_PX = 22  # cap height of FONT_HERSHEY_SIMPLEX at scale 1 (cv2.getTextSize("A") -> 22 px)


def line_style(image: np.ndarray) -> tuple[int, float]:
    """``(thickness, font_scale)`` from the frame size: box lines ~1/360 of the shorter side (1 px up to 540 px),
    text ~2.2% of it with a 7 px floor, so labels stay smaller than the objects on 240p and legible on 4K."""
    side = min(image.shape[:2])
    thickness = max(1, round(side / 360))
    text_px = max(MIN_TEXT_PX, TEXT_FRACTION * side)
    return thickness, text_px / _FONT_PX


def label_of(c: int, class_names: list[str] | None) -> str:
    """The class name of index ``c``, or the index itself when there is no name for it."""
    return class_names[c] if class_names is not None and 0 <= c < len(class_names) else str(c)


class LabelPlacer:
    """Where each label tag of one image goes: above its box, else inside the box's top, else below the box,
    else inside its bottom -- the first spot that lies inside the frame and covers no tag placed before (tags
    are placed in drawing order: highest score first). When every spot is taken the tag is left out and the
    box stays; :attr:`skipped` counts those."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.placed: list[tuple[int, int, int, int]] = []
        self.skipped = 0

    def place(self, box, tag_w: int, tag_h: int):
        """The tag's top-left corner ``(x, y)`` for xyxy ``box``, or None (left out)."""
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        x = min(max(x1, 0), max(self.width - tag_w, 0))  # inside the frame horizontally
        for y in (y1 - tag_h, y1, y2, y2 - tag_h):
            if y < 0 or y + tag_h > self.height:
                continue
            rect = (x, y, x + tag_w, y + tag_h)
            if not any(rect[0] < r[2] and r[0] < rect[2] and rect[1] < r[3] and r[1] < rect[3] for r in self.placed):
                self.placed.append(rect)
                return x, y
        self.skipped += 1
        return None


def draw_box(image: np.ndarray, box, label: str | None, color, thickness: int, font_scale: float,
             placer: LabelPlacer | None = None) -> None:
    """One xyxy ``box`` and, unless ``label`` is None, its tag (:func:`draw_label`)."""
    import cv2

    x1, y1, x2, y2 = box
    cv2.rectangle(image, (int(round(x1)), int(round(y1))), (int(round(x2)), int(round(y2))), color, thickness,
                  cv2.LINE_AA)
    if label is not None:
        draw_label(image, box, label, color, thickness, font_scale, placer)


def draw_label(image: np.ndarray, box, label: str, color, thickness: int, font_scale: float,
               placer: LabelPlacer | None = None) -> None:
    """The filled ``label`` tag of xyxy ``box``, placed by ``placer`` (default: a placer for this box only).
    Drawn after every box, so no box line crosses a tag."""
    import cv2

    text_thickness = max(1, thickness - 1) if font_scale < 0.6 else max(1, round(font_scale * 1.5))
    (tw, th), base = cv2.getTextSize(label, _FONT, font_scale, text_thickness)
    pad = max(1, round(th * 0.2))
    tag_w, tag_h = tw + 2 * pad, th + base + pad
    placer = placer or LabelPlacer(image.shape[1], image.shape[0])
    spot = placer.place(box, tag_w, tag_h)
    if spot is None:
        return
    x, y = spot
    cv2.rectangle(image, (x, y), (x + tag_w, y + tag_h), color, -1)
    ink = (0, 0, 0) if sum(color) > 300 else (255, 255, 255)  # dark text on light tags, light on dark
    cv2.putText(image, label, (x + pad, y + th + pad // 2), _FONT, font_scale, ink, text_thickness, cv2.LINE_AA)


def draw_detections(image: np.ndarray, dets, class_names: list[str] | None = None) -> np.ndarray:
    """Draw boxes and ``"name score"`` labels on ``image`` (HxWx3 uint8 BGR, modified in place).

    dets: [K, 6] array or tensor ``[x1, y1, x2, y2, score, class]`` in pixels of ``image``. Labels are placed
    best score first, inside the frame and never over one another (:class:`LabelPlacer`).
    """
    dets = np.asarray(dets.cpu() if hasattr(dets, "cpu") else dets, dtype=np.float32).reshape(-1, 6)
    dets = dets[np.argsort(-dets[:, 4], kind="stable")]
    thickness, font_scale = line_style(image)
    placer = LabelPlacer(image.shape[1], image.shape[0])
    for x1, y1, x2, y2, score, cls in dets:  # boxes first, then the tags on top of them
        draw_box(image, (x1, y1, x2, y2), None, class_color(int(cls)), thickness, font_scale)
    for x1, y1, x2, y2, score, cls in dets:
        c = int(cls)
        draw_label(image, (x1, y1, x2, y2), f"{label_of(c, class_names)} {score:.2f}", class_color(c), thickness,
                   font_scale, placer)
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
        placer = LabelPlacer(image.shape[1], image.shape[0])
        ordered = tracks[np.argsort(-tracks[:, 4], kind="stable")]
        for x1, y1, x2, y2, _score, _cls, tid in ordered:  # boxes first, then the tags on top of them
            draw_box(image, (x1, y1, x2, y2), None, self.colors[int(tid)], thickness, font_scale)
        for x1, y1, x2, y2, score, cls, tid in ordered:
            label = f"#{int(tid)} {label_of(int(cls), self.class_names)} {score:.2f}"
            draw_label(image, (x1, y1, x2, y2), label, self.colors[int(tid)], thickness, font_scale, placer)
        return image
