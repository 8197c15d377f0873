"""HOG features on a whole image, laid out as a block grid.

yolokit uses OpenCV's ``cv2.HOGDescriptor`` (Dalal & Triggs 2005: 8x8-pixel cells, 16x16 blocks of 2x2 cells,
block stride 8, 9 unsigned orientation bins, L2-Hys block normalisation). It is C++ code that already ships in
the wheel yolokit depends on (opencv-python-headless 4.x; OpenCV 5 moved it to the contrib wheel), it is the same
code as the ``detectMultiScale`` the benchmark compares against, and it lets a trained model be handed to
``HOGDescriptor.setSVMDetector`` unchanged -- which is how the tests check the vectorised scanner.

The trick that makes scanning cheap: a window's HOG descriptor is nothing but a ``wy x wx`` sub-grid of the
blocks of the whole image (the window's blocks are the image's blocks, when windows move by the block stride).
So HOG is computed ONCE per pyramid level, as a ``[nby, nbx, D]`` grid of block vectors, and every window is
read out of that grid. OpenCV orders a descriptor's blocks x-major (column by column); :func:`to_grid` and
:func:`from_grid` convert between that order and the row-major grid used here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HogParams:
    """HOG geometry. ``window`` is ``(width, height)`` in pixels, a multiple of ``cell`` plus one block."""

    window: tuple[int, int] = (64, 64)
    block: int = 16
    stride: int = 8
    cell: int = 8
    bins: int = 9

    def __post_init__(self):
        w, h = self.window
        if self.block % self.cell or self.block % self.stride:
            raise ValueError(f"block {self.block} must be a multiple of cell {self.cell} and stride {self.stride}")
        if (w - self.block) % self.stride or (h - self.block) % self.stride or min(w, h) < self.block:
            raise ValueError(f"window {self.window}: (side - block {self.block}) must be a multiple of "
                             f"stride {self.stride}")

    @property
    def block_dim(self) -> int:
        """Length of one block vector: cells per block x bins."""
        return (self.block // self.cell) ** 2 * self.bins

    @property
    def window_blocks(self) -> tuple[int, int]:
        """``(wy, wx)``: blocks down and across one window."""
        w, h = self.window
        return (h - self.block) // self.stride + 1, (w - self.block) // self.stride + 1

    def descriptor(self, size: tuple[int, int] | None = None):
        """A ``cv2.HOGDescriptor`` with this geometry and window ``size`` (``(w, h)``, default the window)."""
        import cv2

        b, s, c = self.block, self.stride, self.cell
        return cv2.HOGDescriptor(tuple(size or self.window), (b, b), (s, s), (c, c), self.bins)


def to_grid(desc: np.ndarray, nby: int, nbx: int, dim: int) -> np.ndarray:
    """OpenCV descriptor (blocks x-major) -> ``[nby, nbx, dim]`` row-major block grid (a view when possible)."""
    return desc.reshape(nbx, nby, dim).transpose(1, 0, 2)


def from_grid(grid: np.ndarray) -> np.ndarray:
    """``[nby, nbx, dim]`` block grid -> flat OpenCV descriptor order (blocks x-major)."""
    return np.ascontiguousarray(grid.transpose(1, 0, 2)).reshape(-1)


def level_grid(image: np.ndarray, params: HogParams) -> np.ndarray:
    """HOG of a whole image as a block grid.

    Args:
        image: ``uint8 [H, W]`` or ``[H, W, 3]`` (colour: OpenCV takes the strongest channel's gradient).
    Returns:
        ``float32 [nby, nbx, D]`` with ``nby = (H - block) // stride + 1`` (the right/bottom pixels that do not
        fill a block are dropped, as in ``detectMultiScale``), or ``[0, 0, D]`` for an image smaller than a block.
    """
    h, w = image.shape[:2]
    b, s = params.block, params.stride
    if h < b or w < b:
        return np.zeros((0, 0, params.block_dim), np.float32)
    nby, nbx = (h - b) // s + 1, (w - b) // s + 1
    hh, ww = (nby - 1) * s + b, (nbx - 1) * s + b
    # One window covering the block-aligned part, located at (0, 0) of the WHOLE image: the gradients at its
    # right/bottom edge then see the real pixels beyond it, as in detectMultiScale (a crop would mirror them).
    desc = params.descriptor((ww, hh)).compute(np.ascontiguousarray(image), (s, s), (0, 0), ((0, 0),))
    return to_grid(desc, nby, nbx, params.block_dim)


def window_grids(grid: np.ndarray, rows: np.ndarray, cols: np.ndarray, params: HogParams) -> np.ndarray:
    """Read windows out of a block grid.

    Args:
        grid: ``[nby, nbx, D]``. rows, cols: int ``[K]`` top-left block of each window.
    Returns:
        ``float32 [K, wy * wx * D]``: row-major window grids, flattened (the SVM's feature vectors).
    """
    wy, wx = params.window_blocks
    iy = rows[:, None, None] + np.arange(wy)[None, :, None]         # [K, wy, 1]
    ix = cols[:, None, None] + np.arange(wx)[None, None, :]         # [K, 1, wx]
    return grid[iy, ix].reshape(len(rows), -1)
