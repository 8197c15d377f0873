"""The classical baseline: HOG features + a linear SVM over a sliding window and an image pyramid.

``train`` fits a one-class :class:`HogSvmDetector` (hard-negative mining, Platt-calibrated scores);
``HogSvmDetector.predict`` goes through yolokit's post-processor like every YOLO model; ``people`` wraps
OpenCV's Dalal-Triggs people detector as a reference point.
"""

from yolokit.hog.features import HogParams
from yolokit.hog.model import HogSvmDetector
from yolokit.hog.train import train

__all__ = ["HogParams", "HogSvmDetector", "train"]
