"""Training: the loop (:func:`train` with a :class:`TrainConfig`), checkpoints, EMA, LR schedules,
torchvision backbones under a YOLO head, and DDP via torchrun."""

from yolokit.engine.checkpoint import load_checkpoint, save_checkpoint
from yolokit.engine.ema import ModelEMA
from yolokit.engine.schedule import BurnInSchedule
from yolokit.engine.trainer import NonFiniteLossError, TrainConfig, train, validate

__all__ = ["TrainConfig", "train", "validate", "NonFiniteLossError", "ModelEMA", "BurnInSchedule",
           "save_checkpoint", "load_checkpoint"]
