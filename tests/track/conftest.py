"""Fixtures for the tracking tests: MOT15 public detections from ../shared, motmetrics' ground truth."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mot15(shared) -> Path:
    """``<seq>/det/det.txt`` for 11 MOT15 train sequences (SORT's Faster R-CNN detections)."""
    return shared / "mot15_public_dets" / "train"


@pytest.fixture(scope="session")
def tud_gt() -> dict[str, Path]:
    """Ground truth of TUD-Campus and TUD-Stadtmitte, as shipped in the motmetrics 1.4.0 wheel."""
    pytest.importorskip("motmetrics")
    from yolokit.track.metrics import motmetrics_gt

    paths = {s: motmetrics_gt(s) for s in ("TUD-Campus", "TUD-Stadtmitte")}
    if any(p is None for p in paths.values()):
        pytest.skip("this motmetrics has no TUD ground truth (pip install motmetrics==1.4.0)")
    return paths
