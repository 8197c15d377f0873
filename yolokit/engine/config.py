"""The training options: one dataclass, read once at the edge (CLI flags, a preset YAML, or code).

Every value is checked when the config is built (``__post_init__``, with :mod:`yolokit.settings`' validators):
a bad one is one :class:`~yolokit.errors.ConfigError` line naming the option (as its ``--flag``) and the
accepted range, before any data or model is read.

Pure Python (no torch import; only a CUDA ``device`` is checked with torch), so the CLI can build ``--help`` and
read presets cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from yolokit.errors import ConfigError


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
    workers: int = 0
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
    freeze: int = 0  # freeze the first N layers (transfer learning)
    freeze_epochs: int = 0  # unfreeze them after this many epochs (0 = frozen for the whole run)
    unfreeze_lr: float = 0.1  # ... and from then on train everything at this fraction of the learning rate
    keep_head: bool = True  # new classes: keep the pretrained box/objectness rows of the head convs
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
        from yolokit import settings as v

        def check(keys, fn):  # None: not set, the recipe fills it in
            for k in keys:
                if getattr(self, k) is not None:
                    setattr(self, k, fn(k, getattr(self, k)))

        def ints(minimum, *keys):
            check(keys, lambda k, x: v.check_int(k, x, minimum))

        def fractions(*keys):
            check(keys, v.check_fraction)

        def at_least_zero(*keys):
            check(keys, lambda k, x: v.check_at_least(k, x, 0.0))

        self.imgsz = v.check_imgsz("imgsz", self.imgsz)
        ints(1, "epochs", "batch", "nbs", "val_every")
        ints(0, "workers", "burn_in", "freeze", "freeze_epochs", "patience", "limit_train", "limit_val",
             "max_updates")
        self.seed = v.check_int("seed", self.seed, -(2 ** 63))
        check(("lr", "scale", "unfreeze_lr", "ema_tau", "warmup_epochs"), v.check_positive)
        fractions("momentum", "bn_momentum", "ema_decay", "stop_at_map", "mosaic", "mixup", "val_conf", "val_iou")
        at_least_zero("weight_decay", "clip_grad")
        v.check_choice("optimizer", self.optimizer, ("sgd", "adamw"))
        check(("schedule",), lambda k, x: v.check_choice(k, x, ("cosine", "step", "constant")))
        v.check_choice("box_loss", self.box_loss, ("mse", "giou", "ciou"))
        if self.steps is not None:
            self.steps = tuple(v.check_fraction("steps", s) for s in self.steps)
        if self.multiscale is not None:
            if len(self.multiscale) != 2:
                raise ConfigError(f"--multiscale {self.multiscale}: expected MIN MAX")
            lo, hi = (v.check_imgsz("multiscale", s) for s in self.multiscale)
            if lo > hi:
                raise ConfigError(f"--multiscale {lo} {hi}: MIN must be <= MAX")
            self.multiscale = (lo, hi)
        self.device = v.check_device("device", self.device, resolve=False)

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
