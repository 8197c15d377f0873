"""The optimizer: SGD (as Darknet) or AdamW, with weight decay on conv/linear weights only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from yolokit.engine.recipe import DEFAULTS
from yolokit.errors import ConfigError

if TYPE_CHECKING:
    from yolokit.settings import TrainConfig


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov-free, as Darknet) or AdamW. Weight decay applies to conv/linear weights only, not to
    BatchNorm parameters or biases (Darknet decays only weights). Frozen parameters are included: they get
    no gradient, so the optimizer skips them until they are unfrozen (``freeze_epochs``)."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            is_weight = name == "weight" and not isinstance(module, nn.modules.batchnorm._NormBase)
            (decay if is_weight else no_decay).append(p)
    # a config the recipe has not filled in (library use): its constant defaults
    lr, momentum, weight_decay = (DEFAULTS[k] if getattr(cfg, k) is None else getattr(cfg, k)
                                  for k in ("lr", "momentum", "weight_decay"))
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # fused: one kernel per parameter group instead of a loop of small ops per tensor (CPU and CUDA, torch >= 2.4)
    device = next(model.parameters()).device
    fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, **fused)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(momentum, 0.999), **fused)
    raise ConfigError(f"--optimizer must be sgd or adamw, got {cfg.optimizer!r}")


@torch.no_grad()
def start_momentum(optimizer: torch.optim.Optimizer) -> None:
    """Give every parameter without one a zero momentum buffer (SGD). Call after unfreezing layers: fused SGD
    steps all parameters with gradients at once and refuses a mix of started and unstarted buffers; a zero buffer
    is what SGD's first step does anyway (buffer = momentum * 0 + gradient)."""
    if not isinstance(optimizer, torch.optim.SGD):
        return
    for group in optimizer.param_groups:
        if group.get("momentum", 0) == 0:
            continue
        for p in group["params"]:
            state = optimizer.state[p]
            if state.get("momentum_buffer") is None:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
