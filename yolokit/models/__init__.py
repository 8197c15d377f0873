"""YOLO models defined by Darknet cfgs: build, load Darknet weights or yolokit checkpoints, save both.

    model = yolokit.load("yolov3-tiny.cfg", "yolov3-tiny.weights")   # Darknet files
    model = yolokit.load("yolov3-tiny")                              # configs/models/yolov3-tiny.cfg, random init
    model = yolokit.load("run/best.pt")                              # a yolokit checkpoint
"""

from __future__ import annotations

from pathlib import Path

import torch

from yolokit.errors import ConfigError, WeightsError
from yolokit.models.darknet import DarknetModel, load_weights, save_weights, with_num_classes
from yolokit.models.heads import HeadSpec

__all__ = ["DarknetModel", "HeadSpec", "build_model", "load", "load_checkpoint", "save_checkpoint",
           "load_weights", "save_weights", "with_num_classes", "model_names", "config_path", "read_names"]

#: The architectures shipped in ``configs/models`` (beside the package in a source checkout).
CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "models"


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


def read_names(path: str | Path) -> list[str]:
    """Class names from a Darknet ``.names`` file (one per line, blank lines ignored)."""
    try:
        return [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read class names ({exc})") from None


def _find_names(model: DarknetModel, *dirs: Path) -> list[str] | None:
    # A Darknet model folder usually holds its .names file; take it only when exactly one fits the class count.
    for d in dirs:
        fits = [p for p in sorted(d.glob("*.names")) if len(read_names(p)) == model.num_classes]
        if len(fits) == 1:
            return read_names(fits[0])
    return None


def _is_checkpoint(path: Path) -> bool:
    if path.suffix in {".pt", ".pth", ".ckpt"}:
        return True
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"PK"  # torch.save's zip format
    except OSError:
        return False


def load(cfg_or_checkpoint: str | Path, weights: str | Path | None = None, names=None,
         device: str | torch.device = "cpu") -> DarknetModel:
    """Load a model in eval mode.

    Args:
        cfg_or_checkpoint: a Darknet ``.cfg`` path, a yolokit checkpoint (``.pt``), or a name from
            :func:`model_names` (e.g. ``"yolov3-tiny"``).
        weights: Darknet ``.weights`` for a cfg (None: random initialisation).
        names: class names (list) or a ``.names`` file; by default a ``.names`` file beside the weights/cfg
            whose line count equals the number of classes, if there is exactly one.
    """
    src = Path(cfg_or_checkpoint)
    if src.is_file() and _is_checkpoint(src):
        if weights is not None:
            raise ConfigError(f"{src}: a checkpoint already holds its weights; do not pass weights={weights}")
        model = load_checkpoint(src, map_location=device)
    else:
        if not src.is_file():
            src = config_path(str(cfg_or_checkpoint))
        text = src.read_text()
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


def save_checkpoint(model: DarknetModel, path: str | Path, **extra) -> None:
    """``torch.save`` a dict ``{'model': state_dict, 'cfg': cfg text, 'class_names', 'darknet_header', **extra}``
    that :func:`load` (and ``torch.load(weights_only=True)``) reads back."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"model": state, "cfg": model.cfg_text, "class_names": model.class_names,
                "darknet_header": list(model.weights_header), **extra}, path)


def load_checkpoint(path: str | Path, map_location="cpu") -> DarknetModel:
    """Rebuild a model saved by :func:`save_checkpoint`."""
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or foreign file
        raise WeightsError(f"{path}: not a readable yolokit checkpoint ({exc})") from None
    if isinstance(ckpt, dict) and ckpt.get("cfg") is None and ckpt.get("tv_arch"):
        raise WeightsError(f"{path}: a torchvision-backbone model ({ckpt['tv_arch']}), not a Darknet cfg model; "
                           "rebuild it with yolokit.engine.backbones.build_tv_detector")
    if not isinstance(ckpt, dict) or "model" not in ckpt or "cfg" not in ckpt:
        raise WeightsError(f"{path}: checkpoint lacks 'model' and 'cfg' entries (not saved by yolokit)")
    model = DarknetModel(ckpt["cfg"], f"{path}[cfg]")
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise WeightsError(f"{path}: state dict does not fit its cfg ({exc})") from None
    model.class_names = ckpt.get("class_names")
    if ckpt.get("darknet_header"):
        model.weights_header = tuple(ckpt["darknet_header"])
    return model.eval()
