"""Validation during training: the settings it predicts with (saved in every checkpoint) and the AP it reports,
through the one prediction path and evaluator ``yolokit eval`` runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from yolokit.settings import TrainConfig


def validation_settings(cfg: TrainConfig) -> dict:
    """The prediction settings training validates with; saved in every checkpoint as ``settings``, so
    ``yolokit eval --model best.pt`` (and ``detect``) use them by default and report the same AP50."""
    return {"imgsz": int(cfg.imgsz), "conf": float(cfg.val_conf), "iou": float(cfg.val_iou), "max_det": 300}


def validate(model: nn.Module, dataset, settings: dict, batch: int = 8) -> dict:
    """VOC AP at IoU 0.5 (all-point and 07 11-point, difficult ignored) of ``model`` on ``dataset`` through
    :func:`yolokit.eval.evaluate_model` -- the one prediction path and evaluator ``yolokit eval`` runs, with
    ``settings`` (:func:`validation_settings`). Returns ``{"map50", "map50_07", "per_class"}``."""
    from yolokit.eval import evaluate_model

    m = evaluate_model(model, dataset, imgsz=settings["imgsz"], conf=settings["conf"], iou=settings["iou"],
                       max_det=settings["max_det"], batch_size=batch, metrics=["voc", "voc07"])
    return {"map50": m["voc"], "map50_07": m["voc07"],
            # a class with no validation box has no AP: None ("n/a"), never a crash (issue 25)
            "per_class": {name: None if row["voc"] is None else float(row["voc"])
                          for name, row in m["per_class"].items()}}
