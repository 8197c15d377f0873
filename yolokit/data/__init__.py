"""Data: one sample contract over COCO JSON, Pascal VOC XML and YOLO txt, plus the train pipeline.

``load_dataset(yaml_or_dict, split)`` returns a dataset whose items are :class:`Sample`
(uint8 RGB image, float32 xyxy pixel boxes, int64 labels, flags). See ``yolokit/data/config.py`` for the
description format and ``configs/data/*.yaml`` for examples. Train-time augmentation and collate live in
``yolokit.data.augment`` and ``yolokit.data.loader`` (imported on first use: they pull in albumentations); the
letterbox is :mod:`yolokit.ops.letterbox`, the one shared by training, prediction and the apps.
"""

from yolokit.data.load import load_dataset
from yolokit.data.sample import Problem, ProblemReport, Record, Sample

__all__ = ["Sample", "Record", "Problem", "ProblemReport", "load_dataset", "collate", "build_loader", "TrainDataset"]


def __getattr__(name):
    if name in ("collate", "build_loader", "TrainDataset"):
        from yolokit.data import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'yolokit.data' has no attribute {name!r}")
