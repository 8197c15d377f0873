"""Multi-object trackers on top of any detector: SORT and ByteTrack.

Both take one frame's detections ``[K, 6]`` (``x1, y1, x2, y2, score, class`` in pixels: what every
yolokit detector returns) and give that frame's tracks ``[M, 7]``: the same six columns plus the track
id (1, 2, ... in order of birth; an id is never reused). Frames must be given in order, one call each,
including frames without detections (``np.empty((0, 6))``) so that lost tracks age.

The state of all tracks is kept as arrays (one row per track), so predict, match and update are a few
batched numpy operations per frame, with no Python loop over tracks.

Birth and death:

* **SORT** (Bewley et al. 2016, ``sort.py``): every unmatched detection starts a track; a track is
  reported once it was matched ``min_hits`` frames in a row (or during the first ``min_hits`` frames of
  the video) and only in frames where it was matched; it dies after ``max_age`` frames without a match.
  The reported box is the Kalman estimate. One association: IoU >= ``match_iou`` (0.3).
* **ByteTrack** (Zhang et al. 2022, ``byte_tracker.py``): detections with score >= ``track_conf`` are
  associated first with all tracks (matched and lost, Kalman-predicted), IoU similarity weighted by the
  detection score; the tracks left over get a second chance with the *low*-score detections (below
  ``track_conf``), IoU >= 0.5 -- an occluded person's weak box continues its track instead of being
  dropped. A high-score detection (>= ``new_track_conf``) that matches nothing starts a tentative track,
  confirmed by a match in the next frame (immediately in the first frame); tentative tracks that miss
  die. A confirmed track that misses is *lost*: kept, predicted and matchable for ``max_age`` frames,
  then removed. Only matched confirmed tracks are reported, with their matched detection's box.

``per_class=True`` matches a track only with detections of its own class; the default matches across
classes (a car sometimes detected as a truck keeps its id; the track takes the latest class).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from yolokit.ops.boxes_np import box_iou
from yolokit.track.assign import linear_assignment
from yolokit.track.kalman import ByteKalman, SortKalman

TRACKED, LOST = 0, 1


@dataclass
class _Tracks:
    """All live tracks as parallel arrays (row i = track i)."""

    mean: np.ndarray
    cov: np.ndarray
    box: np.ndarray                                                                     # last matched detection
    id: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    score: np.ndarray = field(default_factory=lambda: np.empty(0))
    cls: np.ndarray = field(default_factory=lambda: np.empty(0))
    hits: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))       # matches in total
    streak: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))     # matches in a row
    missed: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))     # frames since a match
    state: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int8))       # TRACKED / LOST
    confirmed: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))

    @classmethod
    def empty(cls, dim: int) -> "_Tracks":
        return cls(np.empty((0, dim)), np.empty((0, dim, dim)), np.empty((0, 4)))

    def __len__(self) -> int:
        return len(self.id)

    def keep(self, mask: np.ndarray) -> None:
        if mask.all():
            return
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name)[mask])

    def extend(self, other: "_Tracks") -> None:
        for f in fields(self):
            setattr(self, f.name, np.concatenate((getattr(self, f.name), getattr(other, f.name))))


class _Tracker:
    kalman: SortKalman | ByteKalman

    def __init__(self, max_age: int, per_class: bool, kalman_box: bool):
        self.max_age = int(max_age)
        self.per_class = bool(per_class)
        self.kalman_box = bool(kalman_box)
        self.reset()

    def reset(self) -> None:
        """Forget every track (a new video); ids restart at 1."""
        self.tracks = _Tracks.empty(self.kalman.F.shape[0])
        self.frame = 0
        self.next_id = 1

    def _iou(self, rows: np.ndarray, dets: np.ndarray) -> np.ndarray:
        """IoU of the predicted boxes of tracks ``rows`` with ``dets``; 0 across classes with per_class."""
        if len(rows) == 0 or len(dets) == 0:
            return np.zeros((len(rows), len(dets)))
        iou = box_iou(self.kalman.to_xyxy(self.tracks.mean[rows]), dets[:, :4])
        if self.per_class:
            iou[self.tracks.cls[rows][:, None] != dets[None, :, 5]] = 0.0
        return iou

    def _update(self, rows: np.ndarray, dets: np.ndarray) -> None:
        """Kalman-correct tracks ``rows`` with their matched detections (same order)."""
        if len(rows) == 0:
            return
        t = self.tracks
        t.mean[rows], t.cov[rows] = self.kalman.update(t.mean[rows], t.cov[rows], self.kalman.to_z(dets[:, :4]))
        t.box[rows], t.score[rows], t.cls[rows] = dets[:, :4], dets[:, 4], dets[:, 5]
        t.hits[rows] += 1
        t.streak[rows] += 1
        t.missed[rows] = 0
        t.state[rows] = TRACKED

    def _birth(self, dets: np.ndarray, confirmed: bool, hits: int = 1) -> None:
        n = len(dets)
        if n == 0:
            return
        mean, cov = self.kalman.initiate(dets[:, :4])
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        zeros = np.zeros(n, dtype=np.int64)
        self.tracks.extend(_Tracks(mean, cov, dets[:, :4].copy(), ids, dets[:, 4].copy(), dets[:, 5].copy(),
                                   zeros + hits, zeros + hits, zeros.copy(), np.zeros(n, dtype=np.int8),
                                   np.full(n, confirmed)))

    def _report(self, mask: np.ndarray) -> np.ndarray:
        t = self.tracks
        box = self.kalman.to_xyxy(t.mean[mask]) if self.kalman_box else t.box[mask]
        return np.concatenate((box, t.score[mask, None], t.cls[mask, None], t.id[mask, None]), 1)

    def update(self, dets) -> np.ndarray:
        """Advance one frame with this frame's detections ``[K, 6]``; returns the reported tracks ``[M, 7]``."""
        raise NotImplementedError


def _as_dets(dets) -> np.ndarray:
    if hasattr(dets, "cpu"):  # a torch tensor from a yolokit detector
        dets = dets.cpu().numpy()
    dets = np.asarray(dets, dtype=np.float64)
    if dets.size == 0:
        return np.empty((0, 6))
    if dets.ndim != 2 or dets.shape[1] < 6:
        raise ValueError(f"detections must be [K, 6] (x1, y1, x2, y2, score, class), got shape {dets.shape}")
    return dets[:, :6]


class Sort(_Tracker):
    """SORT, following ``sort.py`` (Bewley et al. 2016) step for step (see the module docstring).

    Args:
        max_age: frames a track survives without a match (SORT's default 1).
        min_hits: matches in a row before a track is reported (SORT's default 3).
        match_iou: least IoU of a match (SORT's default 0.3).
        per_class: match only detections of a track's class.
        kalman_box: report the Kalman estimate (as sort.py), else the matched detection's box.
    """

    def __init__(self, max_age: int = 1, min_hits: int = 3, match_iou: float = 0.3, per_class: bool = False,
                 kalman_box: bool = True):
        self.kalman = SortKalman()
        self.min_hits = int(min_hits)
        self.match_iou = float(match_iou)
        super().__init__(max_age, per_class, kalman_box)

    def update(self, dets) -> np.ndarray:
        dets = _as_dets(dets)
        self.frame += 1
        t = self.tracks
        t.mean, t.cov = self.kalman.predict(t.mean, t.cov)
        t.streak[t.missed > 0] = 0
        t.missed += 1
        t.keep(np.isfinite(self.kalman.to_xyxy(t.mean)).all(1))   # a collapsed box (negative area)

        iou = self._iou(np.arange(len(t)), dets)                  # [T, K]
        # sort.py solves the assignment on all pairs and then drops those under the IoU threshold.
        matches, _, unmatched_dets = linear_assignment(-iou, np.inf)
        good = iou[matches[:, 0], matches[:, 1]] >= self.match_iou
        unmatched_dets = np.sort(np.concatenate((unmatched_dets, matches[~good, 1])))
        matches = matches[good]
        self._update(matches[:, 0], dets[matches[:, 1]])
        self._birth(dets[unmatched_dets], confirmed=True, hits=0)  # sort.py: a new track has no hits yet
        t = self.tracks

        shown = (t.missed == 0) & ((t.streak >= self.min_hits) | (self.frame <= self.min_hits))
        out = self._report(shown)
        t.keep(t.missed <= self.max_age)
        return out


class ByteTrack(_Tracker):
    """ByteTrack (Zhang et al. 2022) with the paper's published thresholds as defaults (section 4.1, "Implementation
    details": high score 0.6, low 0.1, a new track needs 0.7, IoU below 0.2 rejected, lost tracks kept 30 frames).
    They were not tuned on the MOT15 sequences yolokit is scored on; byte_tracker.py's command-line defaults
    (track_thresh 0.5, new tracks at 0.6) differ from the paper's.

    Args:
        track_conf: score splitting high (first association, births) from low detections (second).
        low_conf: detections below this are ignored altogether.
        new_track_conf: least score of a detection that starts a track (ByteTrack: track_conf + 0.1).
        match_iou: least (IoU x score) of a first-association match (ByteTrack's match_thresh 0.8 as a
            cost, i.e. 0.2 as a similarity).
        max_age: frames a lost track is kept (ByteTrack's track_buffer, 30 at 30 fps).
        per_class: match only detections of a track's class.
        kalman_box: report the Kalman estimate (as byte_tracker.py) instead of the matched detection's
            box (as supervision and trackers do). The detection's box scores better on MOT15: the filter
            lags a walking person by a few pixels, enough to drop some matches under IoU 0.5.
    """

    second_iou = 0.5      # least IoU of a second-association (low-score) match, as ByteTrack
    tentative_iou = 0.3   # least (IoU x score) for a tentative track's confirming match, as ByteTrack

    def __init__(self, track_conf: float = 0.6, low_conf: float = 0.1, new_track_conf: float | None = None,
                 match_iou: float = 0.2, max_age: int = 30, per_class: bool = False, kalman_box: bool = False):
        self.kalman = ByteKalman()
        self.track_conf = float(track_conf)
        self.low_conf = float(low_conf)
        self.new_track_conf = float(new_track_conf if new_track_conf is not None else track_conf + 0.1)
        self.match_iou = float(match_iou)
        super().__init__(max_age, per_class, kalman_box)

    def update(self, dets) -> np.ndarray:
        dets = _as_dets(dets)
        self.frame += 1
        high = dets[dets[:, 4] >= self.track_conf]
        low = dets[(dets[:, 4] >= self.low_conf) & (dets[:, 4] < self.track_conf)]
        t = self.tracks
        pool = np.flatnonzero(t.confirmed)            # matched and lost confirmed tracks
        tentative = np.flatnonzero(~t.confirmed)

        # ByteTrack predicts the confirmed tracks only, and freezes a lost track's height velocity.
        mean = t.mean[pool]
        mean[t.state[pool] == LOST, 7] = 0.0
        t.mean[pool], t.cov[pool] = self.kalman.predict(mean, t.cov[pool])

        # 1) high-score detections x all confirmed tracks; similarity = IoU x detection score.
        sim = self._iou(pool, high) * high[None, :, 4]
        m1, u_pool, u_high = linear_assignment(1.0 - sim, 1.0 - self.match_iou)
        self._update(pool[m1[:, 0]], high[m1[:, 1]])

        # 2) low-score detections x the tracks still unmatched that were tracked last frame.
        rest = pool[u_pool]
        rest = rest[t.state[rest] == TRACKED]
        m2, u_rest, _ = linear_assignment(1.0 - self._iou(rest, low), 1.0 - self.second_iou)
        self._update(rest[m2[:, 0]], low[m2[:, 1]])
        t.state[rest[u_rest]] = LOST

        # 3) remaining high detections x tentative tracks (born last frame); the unmatched ones die.
        high = high[u_high]
        sim = self._iou(tentative, high) * high[None, :, 4]
        m3, u_tent, u_high = linear_assignment(1.0 - sim, 1.0 - self.tentative_iou)
        self._update(tentative[m3[:, 0]], high[m3[:, 1]])
        t.confirmed[tentative[m3[:, 0]]] = True

        matched = np.zeros(len(t), dtype=bool)
        matched[pool[m1[:, 0]]] = matched[rest[m2[:, 0]]] = matched[tentative[m3[:, 0]]] = True
        t.missed[~matched] += 1
        t.streak[~matched] = 0
        alive = np.ones(len(t), dtype=bool)
        alive[tentative[u_tent]] = False
        alive &= t.missed <= self.max_age
        t.keep(alive)

        # 4) births: unmatched high detections above new_track_conf (confirmed at once in frame 1).
        self._birth(high[u_high][high[u_high][:, 4] >= self.new_track_conf], confirmed=self.frame == 1)
        t = self.tracks
        return self._report(t.confirmed & (t.missed == 0) & (t.state == TRACKED))


def make_tracker(name: str, **kwargs) -> Sort | ByteTrack:
    """A tracker by name (``sort`` or ``bytetrack``) with keyword parameters of that class."""
    trackers = {"sort": Sort, "bytetrack": ByteTrack}
    if name not in trackers:
        raise ValueError(f"unknown tracker {name!r}; known: {', '.join(trackers)}")
    return trackers[name](**kwargs)
