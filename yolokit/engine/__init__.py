"""Training: the loop (:func:`train` with a :class:`TrainConfig`), checkpoints, EMA, LR schedules,
torchvision backbones under a YOLO head, and DDP via torchrun.

Names are imported on first use (PEP 562) so that ``yolokit.engine.config`` stays free of torch.
"""

__all__ = ["TrainConfig", "train", "validate", "NonFiniteLossError", "ModelEMA", "BurnInSchedule",
           "save_checkpoint", "load_checkpoint"]

_WHERE = {"TrainConfig": "config", "train": "trainer", "validate": "trainer", "NonFiniteLossError": "trainer",
          "ModelEMA": "ema", "BurnInSchedule": "schedule", "save_checkpoint": "checkpoint",
          "load_checkpoint": "checkpoint"}


def __getattr__(name):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"yolokit.engine.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'yolokit.engine' has no attribute {name!r}")
