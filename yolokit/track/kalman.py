"""Constant-velocity Kalman filters over boxes, batched: every call works on all tracks at once.

Two box parametrisations, as their trackers published them:

* :class:`SortKalman` -- SORT (Bewley et al. 2016, ``sort.py``): state ``[cx, cy, s, r, vcx, vcy, vs]``
  with ``s`` the area and ``r`` the aspect ratio w/h (held constant); fixed noise.
* :class:`ByteKalman` -- DeepSORT / ByteTrack (``kalman_filter.py``): state ``[cx, cy, a, h, vcx, vcy,
  va, vh]`` with ``a = w/h``; noise proportional to the box height, so a near (tall) box may move more
  pixels than a far one.

Shapes: ``mean [N, D]``, ``cov [N, D, D]``, measurement ``z [N, M]`` (M = 4). Boxes in and out are
``xyxy`` pixels ``[N, 4]``. Tracks are a handful per frame, so numpy (no torch dispatch cost per call)
and batched matrix products instead of a Python loop per track.
"""

from __future__ import annotations

import numpy as np


class _LinearKalman:
    """Shared predict/update of a linear Kalman filter with measurement ``z = H x``."""

    F: np.ndarray  # [D, D] transition
    H: np.ndarray  # [M, D] measurement

    def process_noise(self, mean: np.ndarray) -> np.ndarray:  # [N, D, D]
        raise NotImplementedError

    def measurement_noise(self, mean: np.ndarray) -> np.ndarray:  # [N, M, M]
        raise NotImplementedError

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame ahead: ``x = F x``, ``P = F P F^T + Q``."""
        q = self.process_noise(mean)
        mean = mean @ self.F.T
        cov = self.F @ cov @ self.F.T + q
        return mean, cov

    def update(self, mean: np.ndarray, cov: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct with measurements ``z [N, M]`` (one per row of ``mean``)."""
        hp = self.H @ cov                                       # [N, M, D]
        s = hp @ self.H.T + self.measurement_noise(mean)        # [N, M, M] innovation covariance
        # K = P H^T S^-1, computed as K^T = S^-1 (H P) (P and S are symmetric); solve, never invert.
        gain = np.linalg.solve(s, hp).transpose(0, 2, 1)        # [N, D, M]
        innovation = z - mean @ self.H.T                        # [N, M]
        mean = mean + (gain @ innovation[..., None])[..., 0]
        cov = cov - gain @ hp                                   # (I - K H) P
        return mean, cov


class SortKalman(_LinearKalman):
    """SORT's filter: ``[cx, cy, s, r, vcx, vcy, vs]``, the noise values of ``sort.py``."""

    def __init__(self):
        d = 7
        self.F = np.eye(d)
        self.F[0, 4] = self.F[1, 5] = self.F[2, 6] = 1.0
        self.H = np.eye(4, d)
        self._r = np.diag([1.0, 1.0, 10.0, 10.0])
        self._q = np.diag([1.0, 1.0, 1.0, 1.0, 0.01, 0.01, 0.0001])
        self._p0 = np.diag([10.0, 10.0, 10.0, 10.0, 1e4, 1e4, 1e4])  # unknown velocities: large

    @staticmethod
    def to_z(boxes: np.ndarray) -> np.ndarray:
        wh = boxes[:, 2:4] - boxes[:, :2]                       # [N, 2]
        z = np.empty((len(boxes), 4))
        z[:, :2] = boxes[:, :2] + wh / 2
        z[:, 2] = wh[:, 0] * wh[:, 1]
        z[:, 3] = wh[:, 0] / np.maximum(wh[:, 1], 1e-6)
        return z

    @staticmethod
    def to_xyxy(mean: np.ndarray) -> np.ndarray:
        # sqrt of a negative area gives NaN: such a track has collapsed and SORT drops it.
        half = np.empty((len(mean), 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            half[:, 0] = np.sqrt(mean[:, 2] * mean[:, 3]) / 2
            half[:, 1] = mean[:, 2] / half[:, 0] / 4
        return np.concatenate((mean[:, :2] - half, mean[:, :2] + half), 1)

    def initiate(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(boxes)
        mean = np.zeros((n, 7))
        mean[:, :4] = self.to_z(boxes)
        return mean, np.broadcast_to(self._p0, (n, 7, 7)).copy()

    def predict(self, mean, cov):
        # sort.py: an area about to shrink below zero stops shrinking.
        mean = mean.copy()
        mean[mean[:, 6] + mean[:, 2] <= 0, 6] = 0.0
        return super().predict(mean, cov)

    def process_noise(self, mean):
        return self._q

    def measurement_noise(self, mean):
        return self._r


class ByteKalman(_LinearKalman):
    """DeepSORT/ByteTrack's filter: ``[cx, cy, a, h, vcx, vcy, va, vh]``, noise ~ box height."""

    pos_weight = 1.0 / 20
    vel_weight = 1.0 / 160

    def __init__(self):
        d = 8
        self.F = np.eye(d)
        self.F[range(4), range(4, 8)] = 1.0
        self.H = np.eye(4, d)

    @staticmethod
    def to_z(boxes: np.ndarray) -> np.ndarray:
        wh = boxes[:, 2:4] - boxes[:, :2]                       # [N, 2]
        z = np.empty((len(boxes), 4))
        z[:, :2] = boxes[:, :2] + wh / 2
        z[:, 2] = wh[:, 0] / np.maximum(wh[:, 1], 1e-6)
        z[:, 3] = wh[:, 1]
        return z

    @staticmethod
    def to_xyxy(mean: np.ndarray) -> np.ndarray:
        half = np.empty((len(mean), 2))
        half[:, 1] = mean[:, 3] / 2
        half[:, 0] = mean[:, 2] * half[:, 1]
        return np.concatenate((mean[:, :2] - half, mean[:, :2] + half), 1)

    # Standard deviations = height x weight + constant (the aspect ratio's are fixed), per state entry.
    _p, _v = pos_weight, vel_weight
    _init = (np.array([2 * _p, 2 * _p, 0, 2 * _p, 10 * _v, 10 * _v, 0, 10 * _v]),
             np.array([0, 0, 1e-2, 0, 0, 0, 1e-5, 0]))
    _process = (np.array([_p, _p, 0, _p, _v, _v, 0, _v]), np.array([0, 0, 1e-2, 0, 0, 0, 1e-5, 0]))
    _measure = (np.array([_p, _p, 0, _p]), np.array([0, 0, 1e-1, 0]))

    @staticmethod
    def _diag(h: np.ndarray, weights: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Heights [N] -> diagonal covariances [N, K, K] with std = h * weight + constant."""
        std = h[:, None] * weights[0] + weights[1]              # [N, K]
        return np.eye(len(weights[0])) * (std * std)[:, None, :]

    def initiate(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = self.to_z(boxes)
        mean = np.concatenate((z, np.zeros_like(z)), 1)
        return mean, self._diag(z[:, 3], self._init)

    def process_noise(self, mean):
        return self._diag(mean[:, 3], self._process)

    def measurement_noise(self, mean):
        return self._diag(mean[:, 3], self._measure)
