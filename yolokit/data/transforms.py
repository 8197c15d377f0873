"""Letterbox for the data pipeline: re-exported from :mod:`yolokit.ops.letterbox` (one implementation,
shared by the train pipeline, the predictor and the apps)."""

from yolokit.ops.letterbox import PAD_VALUE, letterbox, letterbox_boxes, letterbox_params, unletterbox_boxes

__all__ = ["PAD_VALUE", "letterbox", "letterbox_boxes", "letterbox_params", "unletterbox_boxes"]
