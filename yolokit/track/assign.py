"""Association of tracks to detections: IoU and a minimum-cost one-to-one assignment.

numpy, not torch: per frame these are a few tens of boxes, where a torch call's dispatch overhead
costs more than the arithmetic. The box convention is yolokit's (``xyxy`` pixels).
"""

from __future__ import annotations

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a [N, 4]`` with every box of ``b [M, 4]`` (xyxy) -> ``[N, M]``."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])                  # [N, M, 2]
    rb = np.minimum(a[:, None, 2:4], b[None, :, 2:4])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)               # [N, M]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def linear_assignment(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one matching of rows to columns, keeping only pairs with cost <= max_cost.

    Returns ``(matches [L, 2] of (row, col), unmatched rows, unmatched cols)``, all int arrays.
    Pairs above ``max_cost`` are made prohibitive *before* solving (as ByteTrack's ``lap.lapjv`` with
    ``cost_limit`` does), so a forbidden pair never displaces an allowed one.
    """
    n, m = cost.shape
    if n == 0 or m == 0:
        return np.empty((0, 2), dtype=int), np.arange(n), np.arange(m)
    from scipy.optimize import linear_sum_assignment

    allowed = cost <= max_cost
    rows, cols = linear_sum_assignment(np.where(allowed, cost, max_cost + 1e5))
    keep = allowed[rows, cols]
    rows, cols = rows[keep], cols[keep]
    free_rows = np.ones(n, dtype=bool)
    free_rows[rows] = False
    free_cols = np.ones(m, dtype=bool)
    free_cols[cols] = False
    return np.stack((rows, cols), 1), np.flatnonzero(free_rows), np.flatnonzero(free_cols)
