"""Fixtures for the model tests: the real Darknet models of ``../shared/data``, loaded once per session."""

from pathlib import Path

import pytest

from yolokit.models import load

FASTEST = ("yolo-fastest-1.0_coco/yolo-fastest", "yolo-fastest-1.0_coco/yolo-fastest-xl",
           "yolo-fastest-1.1_coco/yolo-fastest-1.1", "yolo-fastest-1.1_coco/yolo-fastest-1.1-xl",
           "yolo-fastest-1.1_body/yolo-fastest-1.1_body")


@pytest.fixture(scope="session")
def tiny_files(shared) -> tuple[Path, Path]:
    d = shared / "yolov3_tiny_darknet"
    return d / "yolov3-tiny.cfg", d / "yolov3-tiny.weights"


@pytest.fixture(scope="session")
def tiny(tiny_files):
    """The original yolov3-tiny COCO model (35 MB of weights): load it once for every test."""
    return load(*tiny_files)


def fastest_files(shared: Path, stem: str) -> tuple[Path, Path]:
    base = shared / "yolo_fastest_darknet" / "ModelZoo" / stem
    return Path(f"{base}.cfg"), Path(f"{base}.weights")  # not with_suffix: "yolo-fastest-1.1" has a dot
