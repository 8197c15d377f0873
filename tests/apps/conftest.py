"""Fixtures for the apps tests: the real yolov3-tiny and the real traffic video from ../shared."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_dir(shared) -> Path:
    return shared / "yolov3_tiny_darknet"


@pytest.fixture(scope="session")
def tiny(tiny_dir):
    """Pretrained yolov3-tiny (COCO, 80 classes) in eval mode, with its class names."""
    import yolokit

    return yolokit.load(tiny_dir / "yolov3-tiny.cfg", tiny_dir / "yolov3-tiny.weights")


@pytest.fixture(scope="session")
def video02(shared) -> Path:
    """320x240, 25 fps, 748 frames of motorway traffic (FMP4 in AVI)."""
    return shared / "video_bgslibrary" / "dataset" / "video02.avi"


@pytest.fixture(scope="session")
def photos(shared) -> Path:
    """dog.jpg (768x576), horses.jpg, person.jpg."""
    return shared / "yolo_fastest_darknet" / "data"
