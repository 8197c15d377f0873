"""Training: the loop (:func:`train` with a :class:`TrainConfig`), the recipe (defaults from the dataset size and
the cfg), EMA, LR schedules, mixed precision, run files, and the one torchrun set-up. Checkpoint reading and
writing, torchvision-backbone models, building the model to train and head transfer live with the models
(yolokit.models).

Names are imported on first use (PEP 562), so ``yolokit.engine.TrainConfig`` (the options, in yolokit.settings)
stays free of torch.
"""

__all__ = ["TrainConfig", "train", "Trainer", "validate", "NonFiniteLossError", "SaveError", "LossWeights",
           "ModelEMA", "BurnInSchedule"]

_WHERE = {"TrainConfig": "yolokit.settings", "train": "trainer", "Trainer": "trainer", "validate": "validation",
          "NonFiniteLossError": "trainer", "SaveError": "checkpoints", "LossWeights": "loss_weights", "ModelEMA": "ema",
          "BurnInSchedule": "schedule"}


def __getattr__(name):
    if name in _WHERE:
        import importlib

        where = _WHERE[name]
        return getattr(importlib.import_module(where if "." in where else f"yolokit.engine.{where}"), name)
    raise AttributeError(f"module 'yolokit.engine' has no attribute {name!r}")
