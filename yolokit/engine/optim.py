"""The optimizer: SGD (as Darknet) or AdamW, with weight decay on conv/linear weights only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from yolokit.errors import ConfigError

if TYPE_CHECKING:
    from yolokit.engine.config import TrainConfig


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov-free, as Darknet) or AdamW. Weight decay applies to conv/linear weights only, not to
    BatchNorm parameters or biases (Darknet decays only weights). Frozen parameters are included: they get
    no gradient, so the optimizer skips them until they are unfrozen (``freeze_epochs``)."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            is_weight = name == "weight" and not isinstance(module, nn.modules.batchnorm._NormBase)
            (decay if is_weight else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999))
    raise ConfigError(f"--optimizer must be sgd or adamw, got {cfg.optimizer!r}")
