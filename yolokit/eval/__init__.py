"""Evaluation: VOC AP (2007 11-point and 2010+ all-point), COCO metrics via pycocotools, per-class
tables, PR curves and a confusion matrix.

Ground truth and detections are flat arrays (:class:`GroundTruth`, :class:`Detections`); build them
from dataset samples / records and from per-image ``(K, 6)`` ``[x1, y1, x2, y2, score, class]``
detections (the post-processor's output). :func:`evaluate` is the single entry point.
"""

from yolokit.eval.coco import (COCO80_TO_91, STAT_NAMES, CocoResult, coco_evaluate, coco_image_ids,
                               detections_to_coco, ground_truth_to_coco, save_coco_results)
from yolokit.eval.voc import (Detections, GroundTruth, Match, VocResult, average_precision, pair_iou,
                              voc_evaluate, voc_match)

__all__ = [
    "COCO80_TO_91", "STAT_NAMES", "CocoResult", "coco_evaluate", "coco_image_ids", "detections_to_coco",
    "ground_truth_to_coco", "save_coco_results", "Detections", "GroundTruth", "Match", "VocResult",
    "average_precision", "pair_iou", "voc_evaluate", "voc_match",
]
