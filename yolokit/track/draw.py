"""Drawing tracks on video frames: a colour per track id, ``"#id name score"`` labels, short trails."""

from __future__ import annotations

from collections import deque

import numpy as np


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

        from yolokit.apps.draw import class_color, draw_box, label_of, line_style

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
