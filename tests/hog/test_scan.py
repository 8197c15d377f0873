"""The vectorised scanner against a per-window loop and against OpenCV's own detectMultiScale."""

import numpy as np
import pytest

from yolokit.hog.features import HogParams, from_grid, level_grid, to_grid, window_grids
from yolokit.hog.scan import correlate, pyramid_scales, scan

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def image(shared):
    img = cv2.imread(str(shared / "raccoon" / "images" / "raccoon-63.jpg"))
    return cv2.resize(img, (300, 200), interpolation=cv2.INTER_AREA)  # small: keeps the tests fast


def test_grid_order_roundtrip():
    grid = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    flat = from_grid(grid)
    # OpenCV orders blocks column by column: the second block of the descriptor is the one BELOW the first
    assert np.array_equal(flat[5:10], grid[1, 0])
    assert np.array_equal(to_grid(flat, 3, 4, 5), grid)


def test_level_grid_windows_equal_opencv_window_descriptors(image):
    p = HogParams((64, 64))
    grid = level_grid(image, p)
    assert grid.shape == ((200 - 16) // 8 + 1, (300 - 16) // 8 + 1, 36)
    locs = ((0, 0), (24, 40), (232, 136))                               # (x, y), multiples of 8
    ref = p.descriptor().compute(image, (8, 8), (0, 0), locs).reshape(len(locs), -1)
    wy, wx = p.window_blocks
    for k, (x, y) in enumerate(locs):
        expect = to_grid(ref[k], wy, wx, 36).reshape(-1)
        mine = window_grids(grid, np.array([y // 8]), np.array([x // 8]), p)[0]
        np.testing.assert_allclose(mine, expect, atol=1e-6)


def test_correlate_equals_loop_over_windows():
    rng = np.random.default_rng(0)
    grid = rng.random((9, 11, 4), dtype=np.float32)
    w = rng.standard_normal((3, 5, 4)).astype(np.float32)
    out = correlate(grid, w, bias=0.5)
    assert out.shape == (7, 7)
    for y in range(7):
        for x in range(7):
            assert out[y, x] == pytest.approx(float((grid[y:y + 3, x:x + 5] * w).sum()) + 0.5, abs=1e-4)
    assert correlate(grid[:2], w).shape == (0, 7)                        # smaller than the window: empty


def test_pyramid_scales_stop_at_the_window():
    assert pyramid_scales((128, 128), (64, 64), scale=2.0) == [1.0, 2.0]
    assert pyramid_scales((63, 200), (64, 64), scale=2.0) == []
    assert pyramid_scales((63, 200), (64, 64), scale=2.0, pad=8) == [1.0]      # padding makes room
    assert pyramid_scales((128, 128), (64, 64), scale=2.0, upscale=2.0)[0] == 0.5


def test_scan_matches_detect_multiscale(image):
    """Same SVM in both: every window OpenCV reports is ours too, with the same score."""
    p = HogParams((64, 64))
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((7, 7, 36)) * 0.05).astype(np.float32)
    s = correlate(level_grid(image, p), w)
    bias = -float(np.quantile(s, 0.5))                                   # about half of the windows pass
    hog = p.descriptor()
    hog.setSVMDetector(np.concatenate([from_grid(w), [bias]]).astype(np.float32))
    rects, scores = hog.detectMultiScale(image, hitThreshold=0.0, winStride=(8, 8), padding=(0, 0),
                                         scale=1.2, groupThreshold=0)
    boxes, mine = scan(image, w, bias, p, threshold=0.0, scale=1.2)
    rects, scores = np.asarray(rects).reshape(-1, 4), np.asarray(scores).reshape(-1)
    assert len(rects) > 50 and abs(len(rects) - len(boxes)) <= 0.02 * len(rects)   # rounding at the threshold
    from benchmarks.hog import compare_windows

    missing, worst = compare_windows(rects, scores, boxes, mine)
    assert missing == 0
    assert worst < 1e-4


def test_scan_threads_do_not_change_the_result(image):
    p = HogParams((64, 64))
    w = (np.random.default_rng(2).standard_normal((7, 7, 36)) * 0.05).astype(np.float32)
    a = scan(image, w, 0.0, p, threshold=-0.2, scale=1.2, threads=1)
    b = scan(image, w, 0.0, p, threshold=-0.2, scale=1.2, threads=2)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
