import numpy as np
import pytest

from yolokit.track.kalman import ByteKalman, SortKalman


def moving_box(t: int, v=(4.0, 1.0)) -> np.ndarray:
    return np.array([[10 + v[0] * t, 20 + v[1] * t, 40 + v[0] * t, 80 + v[1] * t]])


@pytest.mark.parametrize("kf", [SortKalman(), ByteKalman()], ids=["sort", "bytetrack"])
def test_constant_velocity_is_learned_and_boxes_round_trip(kf):
    box = moving_box(0)
    assert np.allclose(kf.to_xyxy(kf.initiate(box)[0]), box)
    mean, cov = kf.initiate(box)
    for t in range(1, 15):
        mean, cov = kf.predict(mean, cov)
        mean, cov = kf.update(mean, cov, kf.to_z(moving_box(t)))
    pred, _ = kf.predict(mean, cov)
    assert np.allclose(kf.to_xyxy(pred), moving_box(15), atol=0.5)   # one frame ahead, by the velocity
    assert np.allclose(cov, cov.transpose(0, 2, 1))                   # covariance stays symmetric


@pytest.mark.parametrize("kf", [SortKalman(), ByteKalman()], ids=["sort", "bytetrack"])
def test_batched_equals_one_track_at_a_time(kf):
    boxes = np.array([[10, 20, 40, 80], [100, 50, 120, 70], [0, 0, 5, 12]], dtype=float)
    shifted = boxes + np.array([[3, -1, 4, 0], [1, 1, 1, 1], [0, 2, 0, 3]])
    mean, cov = kf.initiate(boxes)
    mean, cov = kf.predict(mean, cov)
    mean, cov = kf.update(mean, cov, kf.to_z(shifted))
    for i in range(3):
        m, c = kf.initiate(boxes[i:i + 1])
        m, c = kf.predict(m, c)
        m, c = kf.update(m, c, kf.to_z(shifted[i:i + 1]))
        assert np.allclose(m, mean[i:i + 1]) and np.allclose(c, cov[i:i + 1])
