"""Evaluation: VOC AP (2007 11-point and 2010+ all-point), COCO metrics via pycocotools, per-class
tables, PR curves and a confusion matrix; and what explains the AP: the TIDE error breakdown, COCO analysis
bands, per-image drill-down, F1-optimal per-class thresholds and oLRP (:mod:`yolokit.eval.explain`).

Ground truth and detections are flat arrays (:class:`GroundTruth`, :class:`Detections`); build them
from dataset samples / records and from per-image ``(K, 6)`` ``[x1, y1, x2, y2, score, class]``
detections (the post-processor's output). :func:`evaluate` is the single entry point.
"""

from yolokit.eval.coco import (COCO80_TO_91, STAT_NAMES, CocoResult, coco_evaluate, coco_image_ids,
                               detections_to_coco, ground_truth_to_coco, save_coco_results)
from yolokit.eval.confusion import confusion_matrix
from yolokit.eval.evaluator import METRICS, evaluate, evaluate_model, format_table, predict_dataset
from yolokit.eval.inputs import detections_from_coco, ground_truth_from, save_detections
from yolokit.eval.thresholds import f1_optimal_thresholds, load_class_thresholds
from yolokit.eval.tide import tide
from yolokit.eval.voc import (Detections, GroundTruth, Match, VocResult, average_precision, pair_iou,
                              voc_evaluate, voc_match)

__all__ = [
    "METRICS", "confusion_matrix", "detections_from_coco", "evaluate", "evaluate_model", "format_table",
    "ground_truth_from", "predict_dataset", "save_detections",
    "COCO80_TO_91", "STAT_NAMES", "CocoResult", "coco_evaluate", "coco_image_ids", "detections_to_coco",
    "ground_truth_to_coco", "save_coco_results", "Detections", "GroundTruth", "Match", "VocResult",
    "average_precision", "pair_iou", "voc_evaluate", "voc_match",
    "tide", "f1_optimal_thresholds", "load_class_thresholds",
]
