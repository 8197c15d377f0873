"""Typed settings of the commands that run a model, and the one place every setting is validated.

Each command builds its settings once, at the edge, from its flags (``PredictSettings.from_args(args)``) or
from keyword arguments in code; ``__post_init__`` checks every value, so a bad one is one
:class:`~yolokit.errors.ConfigError` line that names the flag and the accepted range, before any file is read
or any model is loaded. The validators below are also what :class:`yolokit.engine.config.TrainConfig` uses.

========  =======================================================  ==========================
name      meaning                                                  accepted
========  =======================================================  ==========================
imgsz     square network input side, pixels                        a positive multiple of 32
conf      score threshold of the detector (objectness x class)     [0, 1]
iou       NMS IoU threshold                                        [0, 1]
max_det   detections kept per image                                >= 1
device    ``auto`` (CUDA when available, else cpu), cpu, cuda,     a device this torch sees
          cuda:N, N (= cuda:N), mps
batch     images per forward pass                                  >= 1
========  =======================================================  ==========================

Pure Python at import time (torch is imported only to check a CUDA/MPS device), so ``--help`` stays instant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Sequence

from yolokit.errors import ConfigError

#: The device value that means "CUDA when this torch sees one, else cpu" (the default of every command).
AUTO = "auto"
STRIDE = 32
#: The largest input side a setting may ask for (flags, checkpoints' saved settings, ONNX metadata alike):
#: 4096 is past any published YOLO input; 2**20 would allocate terabytes.
MAX_IMGSZ = 4096


def flag(key: str) -> str:
    """The command-line spelling of a settings key: ``max_det`` -> ``--max-det``."""
    return "--" + key.replace("_", "-")


def _fail(key: str, value: Any, expected: str):
    raise ConfigError(f"{flag(key)} {_show(value)}: {expected}")


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(_show(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _number(key: str, value: Any, integer: bool = False):
    if isinstance(value, str):  # a preset's "1e-3" (YAML 1.1 reads it as a string)
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
        _fail(key, value, "expected an integer" if integer else "expected a number")
    if not math.isfinite(value):
        _fail(key, value, "expected a finite number")
    return int(value) if integer else value


def check_fraction(key: str, value: float) -> float:
    """A threshold in [0, 1] (``conf``, ``iou``, probabilities)."""
    value = _number(key, value)
    if not 0.0 <= value <= 1.0:
        _fail(key, value, "must be in [0, 1]")
    return float(value)


def check_imgsz(key: str, value: int) -> int:
    """A network input side: a positive multiple of the YOLO stride (32), at most :data:`MAX_IMGSZ`."""
    value = _number(key, value, integer=True)
    if value <= 0 or value % STRIDE:
        _fail(key, value, f"must be a positive multiple of {STRIDE} (the YOLO stride), e.g. 320, 416, 640")
    if value > MAX_IMGSZ:
        _fail(key, value, f"must be at most {MAX_IMGSZ} (one {value}x{value} input would need over "
                          f"{3 * 4 * value * value / 1e9 * 16:.0f} GB in the first layer alone)")
    return value


def check_int(key: str, value: int, minimum: int) -> int:
    """An integer >= ``minimum`` (``batch >= 1``, ``workers >= 0``, ...)."""
    value = _number(key, value, integer=True)
    if value < minimum:
        _fail(key, value, f"must be an integer >= {minimum}")
    return value


def check_positive(key: str, value: float) -> float:
    """A number > 0 (learning rate, TTA scales)."""
    value = _number(key, value)
    if value <= 0:
        _fail(key, value, "must be > 0")
    return float(value)


def check_at_least(key: str, value: float, minimum: float) -> float:
    """A number >= ``minimum`` (weight decay >= 0, ...)."""
    value = _number(key, value)
    if value < minimum:
        _fail(key, value, f"must be >= {minimum:g}")
    return float(value)


def check_choice(key: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        _fail(key, value, f"expected one of {', '.join(choices)}")
    return value


def check_device(key: str, value: str, resolve: bool = True) -> str:
    """A device this torch can use: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``N`` (= ``cuda:N``), ``mps``.

    Returns the device name (``N`` becomes ``cuda:N``; with ``resolve``, ``auto`` becomes ``cuda`` when CUDA is
    available, else ``cpu``). A CUDA or MPS device that this machine does not have is an error; torch is imported
    only to check one.
    """
    name = str(value).strip().lower()
    if name.isdigit():
        name = f"cuda:{name}"
    if name == AUTO:
        if not resolve:
            return name
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    kind, _, index = name.partition(":")
    if kind not in ("cuda", "mps") or (index and not index.isdigit()) or (kind == "mps" and index):
        _fail(key, value, "expected auto, cpu, cuda, cuda:N, N or mps")
    import torch

    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            _fail(key, value, "this torch sees no MPS device (use --device cpu)")
        return name
    if not torch.cuda.is_available():
        _fail(key, value, "this torch sees no CUDA device (use --device cpu)")
    count = torch.cuda.device_count()
    if index and int(index) >= count:
        _fail(key, value, f"this machine has {count} CUDA device(s): cuda:0 .. cuda:{count - 1}")
    return name


def resolve_device(value: str | None) -> str:
    """``auto`` (or None) -> ``cuda`` when available, else ``cpu``; other names are checked as by
    :func:`check_device`."""
    return check_device("device", AUTO if value is None else value)


class _FromArgs:
    """``Settings.from_args(args)``: the dataclass built from the argparse namespace's attributes of the same
    names (absent ones keep their defaults)."""

    @classmethod
    def from_args(cls, args, **overrides):
        given = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
        return cls(**{**given, **overrides})


def _check_shared(s) -> None:
    """Checks of the fields the settings classes share (None: the model's setting)."""
    names = {f.name for f in fields(s)}
    if s.imgsz is not None:
        s.imgsz = check_imgsz("imgsz", s.imgsz)
    for key in ("conf", "iou"):
        if getattr(s, key) is not None:
            setattr(s, key, check_fraction(key, getattr(s, key)))
    if "max_det" in names and s.max_det is not None:
        s.max_det = check_int("max_det", s.max_det, 1)
    if "batch" in names:
        s.batch = check_int("batch", s.batch, 1)
    if "tta_scales" in names:
        s.tta_scales = tuple(check_positive("tta_scales", v) for v in s.tta_scales)
        if not s.tta_scales:
            _fail("tta_scales", "", "give at least one scale, e.g. 1 0.83")
    s.device = check_device("device", s.device)


@dataclass
class PredictSettings(_FromArgs):
    """``yolokit detect`` and ``yolokit track``: what :class:`yolokit.models.predict.Predictor` takes. ``imgsz``/``iou``/``max_det`` None: the checkpoint's saved settings, else the cfg's size and
    :data:`yolokit.models.predict.DEFAULTS`; ``conf`` stays 0.25 for display. ``device`` is resolved
    (``auto`` -> ``cuda`` or ``cpu``)."""

    imgsz: int | None = None
    conf: float | None = 0.25
    iou: float | None = None
    max_det: int | None = 300
    device: str = AUTO
    batch: int = 1
    tta: bool = False
    tta_scales: Sequence[float] = (1.0,)
    max_frames: int | None = None

    def __post_init__(self):
        _check_shared(self)
        if self.max_frames is not None:
            self.max_frames = check_int("max_frames", self.max_frames, 1)


@dataclass
class EvalSettings(_FromArgs):
    """``yolokit eval``: the detector's settings (None: the checkpoint's validation settings, else
    :data:`yolokit.models.predict.EVAL_DEFAULTS`) and the metric's.

    ``report_conf`` is the score threshold of the precision/recall line and the confusion matrix (not the
    detector's ``conf``); ``match_iou`` the IoU at which a detection matches a ground-truth box (VOC);
    ``coco_max_dets`` COCO's maxDets for AP (not the detector's ``max_det``).
    """

    imgsz: int | None = None
    conf: float | None = None
    iou: float | None = None
    max_det: int | None = None
    device: str = AUTO
    batch: int = 8
    tta: bool = False
    tta_scales: Sequence[float] = (1.0,)
    report_conf: float = 0.25
    match_iou: float = 0.5
    coco_max_dets: int = 100

    def __post_init__(self):
        _check_shared(self)
        self.report_conf = check_fraction("report_conf", self.report_conf)
        self.match_iou = check_fraction("match_iou", self.match_iou)
        self.coco_max_dets = check_int("coco_max_dets", self.coco_max_dets, 1)


@dataclass
class ExportSettings(_FromArgs):
    """``yolokit export``: input size (None: the checkpoint's / cfg's), the in-graph NMS thresholds (``iou``
    None: the checkpoint's, else 0.45), the opset, and the device the model is traced on."""

    imgsz: int | None = None
    conf: float = 0.25
    iou: float | None = None
    device: str = AUTO
    nms: bool = False
    opset: int = 17

    def __post_init__(self):
        _check_shared(self)
        self.opset = check_int("opset", self.opset, 7)
        if self.nms and self.opset < 11:
            _fail("opset", self.opset, "the in-graph NMS (--nms) needs opset >= 11 (NonMaxSuppression)")
