"""YOLO models defined by Darknet cfgs: build, load Darknet weights or yolokit checkpoints, save both.

    model = yolokit.load("yolov3-tiny.cfg", "yolov3-tiny.weights")   # Darknet files
    model = yolokit.load("yolov3-tiny")                              # configs/models/yolov3-tiny.cfg, random init
    model = yolokit.load("run/best.pt")                              # a yolokit checkpoint (any kind)
    model = yolokit.load("tv:resnet18", num_classes=1)               # torchvision backbone, YOLO head
"""

from __future__ import annotations

from pathlib import Path

import torch

from yolokit.errors import ConfigError
from yolokit.models.cfg import read_names
from yolokit.models.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from yolokit.models.darknet import DarknetModel, with_num_classes
from yolokit.models.heads import HeadSpec
from yolokit.models.weights import load_weights, save_weights

__all__ = ["DarknetModel", "HeadSpec", "build_model", "load", "load_checkpoint", "save_checkpoint",
           "load_weights", "save_weights", "with_num_classes", "model_names", "config_path", "read_names"]

#: The architectures shipped in ``configs/models``. ``yolokit/configs`` is package data in a wheel and a link to the
#: top-level ``configs/`` in a source checkout, so the names work in both.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "models"


def model_names() -> list[str]:
    """Names accepted by :func:`load` / :func:`config_path` (the cfgs in ``configs/models``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.cfg"))


def config_path(name: str) -> Path:
    """``configs/models/<name>.cfg``; ConfigError listing the known names when absent."""
    path = CONFIG_DIR / f"{name}.cfg"
    if not path.is_file():
        raise ConfigError(f"{name}: no such cfg file or model name (known names: {', '.join(model_names())})")
    return path


def build_model(cfg: str, num_classes: int | None = None, source: str = "<cfg>") -> DarknetModel:
    """Build a randomly initialised model from cfg TEXT, optionally with ``num_classes`` classes in every head."""
    model = DarknetModel(cfg, source)
    if num_classes is not None and num_classes != model.num_classes:
        model = with_num_classes(model, num_classes)
    return model.eval()


def _find_names(model: DarknetModel, *dirs: Path) -> list[str] | None:
    # A Darknet model folder usually holds its .names file; take it only when exactly one fits the class count.
    for d in dirs:
        fits = [p for p in sorted(d.glob("*.names")) if len(read_names(p)) == model.num_classes]
        if len(fits) == 1:
            return read_names(fits[0])
    return None


def is_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a yolokit checkpoint (a ``.pt``/``.pth``/``.ckpt`` name, or torch.save's zip format)."""
    if path.suffix in {".pt", ".pth", ".ckpt"}:
        return True
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"PK"  # torch.save's zip format
    except OSError:
        return False


def load(cfg_or_checkpoint: str | Path, weights: str | Path | None = None, names=None,
         device: str | torch.device = "cpu", num_classes: int | None = None):
    """Load a model in eval mode: the one loader for every kind of model yolokit runs.

    Args:
        cfg_or_checkpoint: a Darknet ``.cfg`` path, a yolokit checkpoint (``.pt``, Darknet-cfg or
            torchvision-backbone), a name from :func:`model_names` (e.g. ``"yolov3-tiny"``), or
            ``tv:<backbone>`` (:data:`yolokit.models.tv.BACKBONES`, a YOLOv3-tiny neck and heads).
        weights: Darknet ``.weights`` for a cfg (None: random initialisation); for ``tv:`` a torchvision
            weights name such as ``"DEFAULT"`` (ImageNet backbone, from the torch cache).
        names: class names (list) or a ``.names`` file; by default a ``.names`` file beside the weights/cfg
            whose line count equals the number of classes, if there is exactly one.
        num_classes: for ``tv:`` models, the number of classes (default: len(names), else 80).
    """
    if str(cfg_or_checkpoint).startswith("tv:"):
        from yolokit.models.tv import build_tv_detector

        given = read_names(names) if isinstance(names, (str, Path)) else names
        n = num_classes or (len(given) if given else 80)
        model = build_tv_detector(str(cfg_or_checkpoint)[3:], num_classes=n, pretrained=weights)
        model.class_names = list(given) if given else None
        return model.to(device).eval()
    src = Path(cfg_or_checkpoint)
    if src.suffix.lower() == ".onnx":  # an exported model, run by ONNX Runtime (yolokit.models.onnx)
        from yolokit.models.onnx import load_onnx

        if weights is not None:
            raise ConfigError(f"{src}: an ONNX file already holds its weights; do not pass weights={weights}")
        return load_onnx(src, names=names, device=device)
    if src.is_file() and is_checkpoint(src):
        if weights is not None:
            raise ConfigError(f"{src}: a checkpoint already holds its weights; do not pass weights={weights}")
        model = model_from_checkpoint(load_checkpoint(src, map_location=device), str(src))
    else:
        if not src.is_file():
            src = config_path(str(cfg_or_checkpoint))
        from yolokit.models.cfg import read_cfg

        text = read_cfg(src)[0]  # a binary or unreadable "cfg" is one ConfigError naming it
        model = DarknetModel(text, str(src))
        if weights is not None:
            load_weights(model, weights)
            model.class_names = _find_names(model, Path(weights).parent, src.parent)
    if names is not None:
        model.class_names = read_names(names) if isinstance(names, (str, Path)) else list(names)
    if model.class_names is not None and len(model.class_names) != model.num_classes:
        raise ConfigError(f"{names or src}: {len(model.class_names)} class names for a model with "
                          f"{model.num_classes} classes")
    return model.to(device).eval()
