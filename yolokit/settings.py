"""Typed settings of the commands that run a model, and the one place every setting is validated.

Each command builds its settings once, at the edge, from its flags (``PredictSettings.from_args(args)``) or
from keyword arguments in code; ``__post_init__`` checks every value, so a bad one is one
:class:`~yolokit.errors.ConfigError` line that names the flag and the accepted range, before any file is read
or any model is loaded. Training's options (:class:`TrainConfig`) live here too, checked by the same validators.

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
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
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


def env_number(name: str, default: float, integer: bool = False) -> float:
    """A positive number from the environment variable ``name`` (a limit or a time-out a user may raise);
    ``default`` when it is unset or empty, a one-line ConfigError naming the variable otherwise."""
    value = os.environ.get(name)
    if not value:
        return default
    try:
        out = int(value) if integer else float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r}: expected a number") from None
    if not out > 0:
        raise ConfigError(f"{name}={value!r}: expected a positive number")
    return out


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


# ----------------------------------------------------------------------------------------------- training
@dataclass
class TrainConfig:
    """Everything a run needs; the CLI fills it, tests build it directly. Unknown keys are an error."""

    model: str  # Darknet cfg path, a name from configs/models, a yolokit checkpoint, or tv:<backbone>
    data: str | dict  # dataset YAML (configs/data/*.yaml) or the same as a dict
    weights: str | None = None  # Darknet .weights for a cfg
    out: str | None = None  # None: runs/train (a new run takes the next free name: runs/train2, ...), or the
    #   folder of --resume's checkpoint when it is that folder's last.pt (yolokit.engine.runs)
    exist_ok: bool = False  # write into --out even when it holds another run
    # None below: chosen by the recipe from the dataset's size, the batch and the cfg's [net] training keys
    # (yolokit.engine.recipe; printed as one "recipe: ..." line at the start, each value with its source)
    epochs: int | None = None
    imgsz: int = 416
    batch: int = 16
    nbs: int | None = None  # nominal batch: gradients are accumulated up to this many images per update
    device: str = "auto"  # auto (CUDA when available, else cpu), cpu, cuda, cuda:N, N
    workers: int | None = None  # DataLoader worker processes (None: engine.batches.loader_workers)
    optimizer: str = "sgd"  # sgd | adamw
    lr: float | None = None  # for SGD with the per-image summed loss (Darknet's learning_rate)
    momentum: float | None = None
    weight_decay: float | None = None
    schedule: str | None = None  # cosine | step | constant
    steps: tuple[float, ...] | None = None  # step schedule: fractions of the run
    scale: float | None = None  # step schedule: factor at each step
    burn_in: int | None = None  # warm-up updates (Darknet burn_in, (it/burn_in)^4)
    warmup_epochs: float = 1.0  # the recipe's warm-up when --burn-in is not given (at least 10 updates)
    bn_momentum: float = 0.03  # BatchNorm running-stat momentum while training (0 = keep the model's)
    ema: bool = True
    ema_decay: float | None = None  # the EMA's decay once ramped up (recipe: a window of a tenth of the run)
    ema_tau: float | None = None  # updates over which the EMA's decay ramps up (recipe: a twentieth of the run)
    amp: bool = True  # mixed precision: fp16 on CUDA, bf16 on CPUs with native bf16 (else fp32)
    channels_last: bool = True  # NHWC tensors (faster convolutions on CPU and tensor cores)
    compile: bool = False  # torch.compile the training forward (CUDA: Triton kernels; CPU: needs a C++ compiler)
    freeze: int = 0  # freeze the first N layers (transfer learning)
    freeze_epochs: int = 0  # unfreeze them after this many epochs (0 = frozen for the whole run)
    unfreeze_lr: float = 0.1  # ... and from then on train everything at this fraction of the learning rate
    keep_head: bool = True  # new classes: keep the pretrained box/objectness rows (+ known classes' rows)
    patience: int = 0  # early stopping: epochs without val mAP gain (0 = off)
    stop_at_map: float = 0.0  # stop once val AP50 reaches this (0 = off)
    box_loss: str = "mse"  # mse | giou | ciou
    loss_weights: dict = field(default_factory=dict)  # lambda_* overrides for the loss
    augment: bool = True  # yolokit.data's pipeline: crop, affine, flip, colour, mosaic (off for validation)
    mosaic: float | None = None  # probability of a 4-image mosaic (yolokit.data.AugmentConfig)
    mixup: float = 0.0
    multiscale: tuple[int, int] | None = None  # e.g. (320, 608): one random size per batch (YOLOv2)
    val_split: str = "val"
    train_split: str = "train"
    limit_train: int = 0  # use only the first N training images (0 = all)
    limit_val: int = 0
    val_conf: float = 0.005  # the detector's conf and NMS iou while validating (saved in the checkpoint's
    val_iou: float = 0.45    #   settings: yolokit eval/detect default to them)
    val_every: int = 1
    val_before: bool = False  # also evaluate the starting weights (epoch 0 row)
    resume: str | None = None  # a last.pt to continue from
    seed: int = 0
    sync_bn: bool = False
    progress: bool = True
    tensorboard: bool = True
    clip_grad: float = 0.0  # clip the gradient norm to this before each update (0 = off, as Darknet)
    max_updates: int = 0  # stop after this many optimizer updates (tests, benchmarks; 0 = off)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check every option (and normalise numbers read as strings from YAML); raises a one-line ConfigError
        naming the first bad one."""
        def check(keys, fn):  # None: not set, the recipe fills it in
            for k in keys:
                if getattr(self, k) is not None:
                    setattr(self, k, fn(k, getattr(self, k)))

        def ints(minimum, *keys):
            check(keys, lambda k, x: check_int(k, x, minimum))

        def fractions(*keys):
            check(keys, check_fraction)

        def at_least_zero(*keys):
            check(keys, lambda k, x: check_at_least(k, x, 0.0))

        self.imgsz = check_imgsz("imgsz", self.imgsz)
        ints(1, "epochs", "batch", "nbs", "val_every")
        ints(0, "workers", "burn_in", "freeze", "freeze_epochs", "patience", "limit_train", "limit_val",
             "max_updates")
        self.seed = check_int("seed", self.seed, -(2 ** 63))
        check(("lr", "scale", "unfreeze_lr", "ema_tau", "warmup_epochs"), check_positive)
        fractions("momentum", "bn_momentum", "ema_decay", "stop_at_map", "mosaic", "mixup", "val_conf", "val_iou")
        at_least_zero("weight_decay", "clip_grad")
        check_choice("optimizer", self.optimizer, ("sgd", "adamw"))
        check(("schedule",), lambda k, x: check_choice(k, x, ("cosine", "step", "constant")))
        check_choice("box_loss", self.box_loss, ("mse", "giou", "ciou"))
        if self.steps is not None:
            self.steps = tuple(check_fraction("steps", s) for s in self.steps)
        if self.multiscale is not None:
            if len(self.multiscale) != 2:
                raise ConfigError(f"--multiscale {self.multiscale}: expected MIN MAX")
            lo, hi = (check_imgsz("multiscale", s) for s in self.multiscale)
            if lo > hi:
                raise ConfigError(f"--multiscale {lo} {hi}: MIN must be <= MAX")
            self.multiscale = (lo, hi)
        self.device = check_device("device", self.device, resolve=False)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown training option(s) {unknown} (known: {sorted(known)})")
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> "TrainConfig":
        """A preset (``configs/train/*.yaml``: TrainConfig keys) with ``overrides`` on top."""
        from yolokit.fileio import read_yaml

        path = Path(path)
        data = read_yaml(path, "training preset") or {}  # a regular file (not /dev/zero), aliases bounded
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a training preset is a mapping of option: value")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"{path}: unknown training option(s) {unknown}")
        try:  # a bad value in the file (and not overridden by a flag) names the file
            cls.from_dict({"model": "", "data": "", **{k: v for k, v in data.items() if k not in overrides}})
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        return cls.from_dict({**data, **overrides})
