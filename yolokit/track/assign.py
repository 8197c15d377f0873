"""Association of tracks to detections: a minimum-cost one-to-one assignment (the IoU that feeds it is
:func:`yolokit.ops.boxes_np.box_iou`).

numpy, not torch: per frame these are a few tens of boxes, where a torch call's dispatch overhead
costs more than the arithmetic. The box convention is yolokit's (``xyxy`` pixels).
"""

from __future__ import annotations

import numpy as np


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
