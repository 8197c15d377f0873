"""Sliding-window scanning over an image pyramid, vectorised.

A linear SVM's score for the window whose top-left block is ``(y, x)`` is

    s(y, x) = b + sum_{i<wy, j<wx} < w[i, j], F[y + i, x + j] >

i.e. a cross-correlation of the block grid ``F`` (``[nby, nbx, D]``) with the weight grid ``w`` (``[wy, wx, D]``).
It is computed for all windows of a level at once (``cv2.matchTemplate`` over the D-channel grid) -- never one
HOG call or one dot product per window.

The pyramid follows ``HOGDescriptor.detectMultiScale``: level ``k`` is the image resized by ``1 / scale**k``
(``INTER_LINEAR_EXACT``, sizes rounded), down to the last level that still holds a window, so the two can be
compared window for window. ``upscale`` > 1 adds larger levels first, for objects smaller than the window.
``pad`` > 0 extends every level by that many pixels of mirrored border (``BORDER_REFLECT_101``, the border
``detectMultiScale``'s own ``padding`` uses), so windows may hang over the image edge: an object that fills
the whole image still has a level where the window, context margin included, covers it.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from yolokit.hog.features import HogParams, level_grid


def correlate(grid: np.ndarray, weights: np.ndarray, bias: float = 0.0) -> np.ndarray:
    """Score every window position of a block grid.

    Args:
        grid: ``float32 [nby, nbx, D]`` block grid of one image.
        weights: ``float32 [wy, wx, D]`` SVM weights laid out as a block grid.
    Returns:
        ``float32 [nby - wy + 1, nbx - wx + 1]`` scores (empty when the grid is smaller than the window).
    """
    import cv2

    nby, nbx, dim = grid.shape
    wy, wx, _ = weights.shape
    oy, ox = nby - wy + 1, nbx - wx + 1
    if oy <= 0 or ox <= 0:
        return np.zeros((max(oy, 0), max(ox, 0)), np.float32)
    # OpenCV's matchTemplate (TM_CCORR) is exactly this correlation, summed over the D channels, in one
    # optimised call (direct or DFT by size). Measured 3-15x faster than one matrix product R = F @ w^T
    # followed by wy + wx shifted sums of R's slices, the plain-numpy way to the same numbers.
    out = cv2.matchTemplate(np.ascontiguousarray(grid, np.float32), np.ascontiguousarray(weights, np.float32),
                            cv2.TM_CCORR)
    return out + np.float32(bias)


def pyramid_scales(size: tuple[int, int], window: tuple[int, int], scale: float = 1.05,
                   upscale: float = 1.0, pad: int = 0, min_factor: float = 0.0, max_levels: int = 64) -> list[float]:
    """Downscale factors of the pyramid levels (level = image / factor), largest level first.

    Args:
        size: image ``(width, height)``. window: ``(width, height)``.
        scale: ratio between consecutive levels (> 1).
        upscale: first level is the image enlarged by this much (>= 1), for objects smaller than the window.
        pad: border pixels added to every level (a level is kept while level + 2 * pad holds a window).
        min_factor: skip the levels finer than this factor (their windows are smaller than any object
            expected); the pyramid starts at the first ``scale**k >= max(1 / upscale, min_factor)``.
    """
    if scale <= 1.0:
        raise ValueError(f"pyramid scale must be > 1, got {scale}")
    w, h = size
    start = max(1.0 / max(upscale, 1.0), min_factor)
    first = int(math.ceil(math.log(start) / math.log(scale) - 1e-9))
    factors = []
    for k in range(first, first + max_levels):
        f = scale ** k
        if round(w / f) + 2 * pad < window[0] or round(h / f) + 2 * pad < window[1]:
            break
        factors.append(f)
    return factors


def pyramid_level(image: np.ndarray, factor: float, pad: int = 0) -> np.ndarray:
    """The image resized by ``1 / factor`` (as ``detectMultiScale`` does) and padded by ``pad`` mirrored pixels."""
    import cv2

    h, w = image.shape[:2]
    size = (int(round(w / factor)), int(round(h / factor)))
    if size != (w, h):
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR_EXACT)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    return image


def scan_level(image: np.ndarray, factor: float, weights: np.ndarray, bias: float, params: HogParams,
               threshold: float, pad: int = 0):
    """Windows of one pyramid level scoring >= ``threshold``.

    Returns:
        ``(boxes float32 [K, 4] xyxy in the ORIGINAL image's pixels, scores float32 [K])``.
    """
    scores = correlate(level_grid(pyramid_level(image, factor, pad), params), weights, bias)
    ys, xs = np.nonzero(scores >= threshold)
    s = params.stride
    w, h = params.window
    x1, y1 = (xs * s - pad) * factor, (ys * s - pad) * factor
    boxes = np.stack([x1, y1, x1 + w * factor, y1 + h * factor], axis=1).astype(np.float32)
    return boxes.reshape(-1, 4), scores[ys, xs]


def scan(image: np.ndarray, weights: np.ndarray, bias: float, params: HogParams, threshold: float = 0.0,
         scale: float = 1.05, upscale: float = 1.0, pad: int = 0, min_factor: float = 0.0,
         threads: int | None = None):
    """Slide the SVM over every level of the image pyramid.

    Args:
        image: ``uint8 [H, W(, 3)]``.
        weights: ``[wy, wx, D]`` SVM weights (block grid); bias: the SVM intercept.
        threshold: keep windows whose raw SVM score is >= this. pad: mirrored border per level (pixels).
        upscale, min_factor: where the pyramid starts (see :func:`pyramid_scales`).
        threads: levels scored in parallel (OpenCV and numpy release the GIL); default ``cv2.getNumThreads()``.
    Returns:
        ``(boxes float32 [K, 4] xyxy pixels, scores float32 [K])`` of all windows over the threshold, before NMS.
    """
    import cv2

    h, w = image.shape[:2]
    factors = pyramid_scales((w, h), params.window, scale, upscale, pad, min_factor)
    weights = np.asarray(weights, np.float32)

    def one(f):
        return scan_level(image, f, weights, bias, params, threshold, pad)

    threads = threads or max(cv2.getNumThreads(), 1)
    if threads > 1 and len(factors) > 1:
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(one, factors))
    else:
        parts = [one(f) for f in factors]
    if not parts:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
