"""Association on hand-made scenes: crossing tracks, an occlusion gap, low-score recovery, births."""

import numpy as np
import pytest
import torch

from yolokit.track import ByteTrack, Sort, make_tracker


def box(x: float, y: float, score: float = 0.9, cls: int = 0, w: float = 20, h: float = 40) -> list[float]:
    return [x, y, x + w, y + h, score, cls]


def run(tracker, frames) -> list[dict[int, np.ndarray]]:
    """Per frame: {track id: row}."""
    out = []
    for dets in frames:
        tracks = tracker.update(np.array(dets, dtype=float).reshape(-1, 6))
        assert tracks.shape[1] == 7
        out.append({int(r[6]): r for r in tracks})
    return out


def ids_near(frame: dict[int, np.ndarray], x: float, tol: float = 6) -> list[int]:
    return [i for i, r in frame.items() if abs(r[0] - x) < tol]


@pytest.mark.parametrize("tracker", [Sort(), ByteTrack()], ids=["sort", "bytetrack"])
def test_crossing_tracks_keep_their_ids(tracker):
    # A walks right, B walks left, 10 px apart vertically; they overlap for several frames mid-way.
    frames = [[box(5 * t, 0), box(150 - 5 * t, 10)] for t in range(31)]
    out = run(tracker, frames)
    before = ids_near(out[4], 20)[0], ids_near(out[4], 130)[0]        # A at x=20, B at x=130
    assert before[0] != before[1]
    assert ids_near(out[30], 150) == [before[0]]                      # A ended on the right
    assert ids_near(out[30], 0) == [before[1]]                        # B ended on the left
    assert all(len(f) == 2 for f in out[4:])                          # never a third id, never a gap


def occluded(gap: range, n: int = 30) -> list[list]:
    return [[] if t in gap else [box(10 + 4 * t, 50)] for t in range(n)]


def test_occlusion_gap_bytetrack_keeps_the_id_sort_does_not():
    frames = occluded(range(10, 15))                    # 5 frames without the detection
    out = run(ByteTrack(), frames)
    assert all(len(out[t]) == 0 for t in range(10, 15))  # lost tracks are not reported
    assert set(out[9]) == set(out[15]) == set(out[29]) == {1}   # re-found where the Kalman filter predicted it
    out = run(ByteTrack(max_age=3), frames)             # a shorter memory than the gap: a new id
    assert set(out[9]) == {1} and set(out[29]) == {2}
    out = run(Sort(), frames)                           # SORT's max_age 1 forgets it too
    assert set(out[9]) == {1} and 1 not in out[29] and len(out[29]) == 1


def test_low_score_boxes_continue_a_track_but_never_start_one():
    frames = [[box(10 + 4 * t, 50, score=0.3 if 10 <= t < 20 else 0.9)] for t in range(30)]
    out = run(ByteTrack(track_conf=0.5, low_conf=0.1), frames)
    assert all(set(out[t]) == {1} for t in range(30))   # reported throughout, one id
    assert np.isclose(out[15][1][4], 0.3)               # with the weak box's score
    out = run(ByteTrack(track_conf=0.5, low_conf=0.4), frames)   # weak boxes ignored: lost, then found
    assert all(len(out[t]) == 0 for t in range(10, 20)) and set(out[25]) == {1}
    out = run(ByteTrack(), [[box(10, 50, score=0.3)]] * 5)       # weak boxes alone: no track
    assert all(len(f) == 0 for f in out)


def test_births_need_a_confirming_frame_except_in_the_first():
    tracker = ByteTrack()
    out = run(tracker, [[box(0, 0)], [box(2, 0), box(200, 0)], [box(4, 0)], [box(6, 0), box(300, 0)],
                        [box(8, 0), box(302, 0)]])
    assert set(out[0]) == {1}                           # first frame: confirmed at once
    assert set(out[1]) == {1} and set(out[2]) == {1}    # a one-frame box at x=200 never shows
    assert set(out[3]) == {1} and set(out[4]) == {1, 3}  # x=300: shown from its second frame
    assert tracker.next_id == 4                         # id 2 (x=200) died tentative and is not reused


def test_sort_reports_after_min_hits_and_only_matched_frames():
    out = run(Sort(min_hits=3), [[box(0, 0)]] * 3 + [[box(0, 0), box(100, 0)]] * 5)
    assert set(out[0]) == {1}                           # during the first min_hits frames: at once
    assert [2 in f for f in out[3:]] == [False, False, False, True, True]   # 4th matched frame onwards


def test_per_class_matching():
    frames = [[box(10, 10, cls=2)]] * 3 + [[box(11, 10, cls=7)]] * 3   # a car re-labelled as a truck
    out = run(ByteTrack(), frames)
    assert set(out[5]) == {1} and out[5][1][5] == 7     # class-agnostic: same id, latest class
    out = run(ByteTrack(per_class=True), frames)
    assert set(out[5]) == {2}                           # per class: a new track for the truck


def test_inputs_tensor_empty_and_reset():
    tracker = ByteTrack()
    dets = torch.tensor([box(0, 0)])
    assert tracker.update(dets)[0, 6] == 1
    assert tracker.update(torch.zeros((0, 6))).shape == (0, 7)
    tracker.reset()
    assert tracker.update(dets)[0, 6] == 1              # ids restart per video
    with pytest.raises(ValueError, match=r"\[K, 6\]"):
        tracker.update(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="unknown tracker"):
        make_tracker("deepsort")
