"""The training loop: one :class:`TrainConfig`, one :func:`train` call.

Per epoch: shuffled batches (a ``DistributedSampler`` under torchrun) -> forward in train mode (raw head
outputs) -> :func:`yolokit.loss.build_loss` -> backward, with gradients accumulated up to the nominal batch
(``nbs``) before each optimizer update -> learning-rate schedule and EMA after each update -> validation mAP on
the EMA weights -> ``last.pt`` (and ``best.pt`` when the mAP improved), written atomically -> CSV and
TensorBoard rows -> early stop when the mAP has not improved for ``patience`` epochs.

Batches come from :mod:`yolokit.data` (``TrainDataset`` + ``build_loader``: letterbox, albumentations, mosaic,
multi-scale; a ``DistributedSampler`` under torchrun).

Determinism: every epoch re-seeds python / numpy / torch (and the data pipeline's augmentation RNG) from
``seed + epoch``, so ``--resume`` from the checkpoint of epoch k replays epochs k+1.. exactly as an
uninterrupted run would (on the same device and thread count).
"""

from __future__ import annotations

import csv
import math
import os
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from yolokit.engine.config import TrainConfig
from yolokit.engine.ema import ModelEMA
from yolokit.engine.schedule import BurnInSchedule
from yolokit.errors import ConfigError, YolokitError
from yolokit.models.checkpoint import load_checkpoint, save_checkpoint


class NonFiniteLossError(YolokitError):
    """The loss became NaN or infinite; training stops rather than writing broken weights."""


# ----------------------------------------------------------------------------- distributed helpers
def _dist_env() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment (1 process without it)."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)))


def _setup_distributed(device: torch.device) -> tuple[int, int]:
    import torch.distributed as dist

    rank, local_rank, world = _dist_env()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world


def _resolve_device(name: str) -> torch.device:
    name = str(name)
    if name.isdigit():
        name = f"cuda:{name}"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available on this machine")
        _, local_rank, world = _dist_env()
        if world > 1:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------- model set-up
def build_train_model(cfg: TrainConfig, class_names: list[str], fetch_pretrained: bool = True) -> nn.Module:
    """The model to train: from a cfg (+ Darknet weights), a yolokit checkpoint or a torchvision backbone
    (``tv:resnet18`` ...), with its heads re-sized to the dataset's classes when they differ (the layers
    feeding the heads are then re-initialised; every other layer keeps its weights)."""
    from yolokit.models import load, with_num_classes

    tv_state = _tv_checkpoint(cfg.model)
    if tv_state is not None:
        model = load(cfg.model)
        if model.num_classes != len(class_names):
            raise ConfigError(f"{cfg.model}: a {model.num_classes}-class torchvision-backbone checkpoint; the "
                              f"dataset has {len(class_names)} classes")
    elif str(cfg.model).startswith("tv:"):
        model = load(cfg.model, cfg.weights if fetch_pretrained else None, num_classes=len(class_names))
    else:
        from yolokit.models.transfer import keep_box_and_objectness, prior_bias_init

        model = load(cfg.model, cfg.weights)
        pretrained = cfg.weights is not None or not str(cfg.model).endswith(".cfg")
        if model.num_classes != len(class_names):
            new = with_num_classes(model, len(class_names), class_names)
            if not (pretrained and cfg.keep_head and keep_box_and_objectness(model, new)):
                prior_bias_init(new)
            model = new
        elif not pretrained:
            prior_bias_init(model)
    model.class_names = list(class_names)
    return model


def _tv_checkpoint(path) -> dict | None:
    """The ``tv_arch`` of a torchvision-backbone checkpoint at ``path``, else None."""
    p = Path(str(path))
    if p.suffix not in (".pt", ".pth") or not p.is_file():
        return None
    return load_checkpoint(p).get("tv_arch")


def freeze_layers(model: nn.Module, n: int) -> list[str]:
    """Freeze the first ``n`` layers (``model.layers[:n]``): no gradients, BatchNorm statistics fixed
    (kept in eval mode by :func:`_train_mode`). Returns the frozen parameter names."""
    if n <= 0:
        return []
    layers = getattr(model, "layers", None)
    if layers is None:
        raise ConfigError(f"--freeze {n}: this model has no 'layers' list to freeze")
    frozen = []
    for i, layer in enumerate(layers[:n]):
        for name, p in layer.named_parameters():
            p.requires_grad_(False)
            frozen.append(f"layers.{i}.{name}")
    model._frozen_layers = n
    return frozen


def unfreeze_layers(model: nn.Module) -> None:
    """Undo :func:`freeze_layers` (second stage of the transfer-learning recipe: fine-tune everything)."""
    for p in model.parameters():
        p.requires_grad_(True)
    model._frozen_layers = 0


def _train_mode(model: nn.Module) -> None:
    model.train()
    n = getattr(model, "_frozen_layers", 0)
    for layer in list(getattr(model, "layers", []))[:n]:
        layer.eval()  # frozen layers keep their BatchNorm running statistics


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


# ----------------------------------------------------------------------------- validation
def validation_settings(cfg: TrainConfig) -> dict:
    """The prediction settings training validates with; saved in every checkpoint as ``settings``, so
    ``yolokit eval --model best.pt`` (and ``detect``) use them by default and report the same AP50."""
    return {"imgsz": int(cfg.imgsz), "conf": float(cfg.val_conf), "iou": float(cfg.val_iou), "max_det": 300}


def validate(model: nn.Module, dataset, settings: dict, batch: int = 8) -> dict:
    """VOC AP at IoU 0.5 (all-point and 07 11-point, difficult ignored) of ``model`` on ``dataset`` through
    :func:`yolokit.eval.evaluate_model` -- the one prediction path and evaluator ``yolokit eval`` runs, with
    ``settings`` (:func:`validation_settings`). Returns ``{"map50", "map50_07", "per_class"}``."""
    from yolokit.eval import evaluate_model

    m = evaluate_model(model, dataset, imgsz=settings["imgsz"], conf=settings["conf"], iou=settings["iou"],
                       max_det=settings["max_det"], batch_size=batch, metrics=["voc", "voc07"])
    return {"map50": m["voc"], "map50_07": m["voc07"],
            "per_class": {name: float(row["voc"]) for name, row in m["per_class"].items()}}


# ----------------------------------------------------------------------------- the loop
def _subset(dataset, n: int):
    """The first ``n`` images of a DetectionDataset (a shallow copy sharing the records); all when n == 0."""
    if not n or n >= len(dataset):
        return dataset
    import copy

    sub = copy.copy(dataset)
    sub.records = dataset.records[:n]
    return sub


def _train_loader(train_set, cfg: TrainConfig, epoch: int, world: int, rank: int):
    """This epoch's batches. Single process: yolokit.data's multi-scale batch sampler; DDP: a
    DistributedSampler (one fixed size). Both are seeded from ``seed + epoch``, and the dataset's augmentation
    RNG is re-seeded from torch's seed (set per epoch by the caller) -- so a resumed run replays the same
    epochs as an uninterrupted one."""
    from yolokit.data import build_loader, collate

    train_set._pid = None  # yolokit.data.TrainDataset re-seeds its augmentation RNG on next use
    if world == 1:
        loader = build_loader(train_set, cfg.batch, cfg.imgsz, train=True, workers=cfg.workers,
                              multiscale=cfg.multiscale, seed=cfg.seed)
        loader.batch_sampler.set_epoch(epoch)
        return loader
    sampler = torch.utils.data.distributed.DistributedSampler(train_set, num_replicas=world, rank=rank,
                                                              shuffle=True, seed=cfg.seed)
    sampler.set_epoch(epoch)
    g = torch.Generator().manual_seed(cfg.seed + epoch)
    return torch.utils.data.DataLoader(train_set, batch_size=cfg.batch, sampler=sampler, num_workers=cfg.workers,
                                       collate_fn=collate, generator=g)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def _plain(value):
    """Checkpoint-safe (weights_only) copy of a config value."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def train(cfg: TrainConfig) -> dict:
    """Run training; returns ``{"best_map50", "best_epoch", "epochs_run", "out", "history", "model" (the
    evaluated weights: EMA when on), "raw_model"}``.

    Raises :class:`NonFiniteLossError` (a YolokitError: the CLI prints one line) when the loss goes NaN/inf.
    """
    from yolokit.data import TrainDataset, build_loader, load_dataset
    from yolokit.data.augment import AugmentConfig
    from yolokit.loss import build_loss

    device = _resolve_device(cfg.device)
    rank, world = _setup_distributed(device)
    main = rank == 0
    out = Path(cfg.out)
    if main:
        out.mkdir(parents=True, exist_ok=True)
    _seed_all(cfg.seed)

    train_ds = load_dataset(cfg.data, cfg.train_split, decode=True)  # bad images: reported, left out
    val_ds = load_dataset(cfg.data, cfg.val_split, decode=True)
    for ds in (train_ds, val_ds):
        if main and len(ds.problems):
            print(f"{ds.split}: {ds.problems.summary()}")
    if len(train_ds) == 0:
        raise ConfigError(f"{cfg.data}: split '{cfg.train_split}' has no images")
    class_names = train_ds.class_names

    resume_state = load_checkpoint(cfg.resume) if cfg.resume else None
    model = build_train_model(cfg, class_names, fetch_pretrained=resume_state is None)
    if resume_state is not None:
        model.load_state_dict(resume_state.get("raw_model", resume_state["model"]))
    if cfg.bn_momentum > 0:
        # Darknet's rolling average (momentum 0.01) needs tens of thousands of updates to settle; in a short run
        # the eval-mode statistics would lag the trained weights badly.
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = cfg.bn_momentum
    freeze_layers(model, cfg.freeze)
    model.to(device)
    if cfg.sync_bn and world > 1:
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        elif main:  # torch's SyncBatchNorm runs on GPUs only
            print("--sync-bn ignored: SyncBatchNorm needs CUDA; each process keeps its own BatchNorm statistics")

    try:
        criterion = build_loss(model.heads, img_size=(cfg.imgsz, cfg.imgsz), **_loss_kwargs(model, cfg))
    except TypeError as exc:  # an unknown lambda_* key
        raise ConfigError(f"loss weights {cfg.loss_weights}: {exc}") from None
    optimizer = build_optimizer(model, cfg)
    ema = ModelEMA(model, cfg.ema_decay, cfg.ema_tau) if cfg.ema else None

    augment = AugmentConfig(mosaic=cfg.mosaic, mixup=cfg.mixup) if cfg.augment else None
    train_set = TrainDataset(_subset(train_ds, cfg.limit_train), cfg.imgsz, augment=augment)
    accumulate = max(1, round(cfg.nbs / (cfg.batch * world)))
    batches_per_epoch = math.ceil(math.ceil(len(train_set) / world) / cfg.batch)
    updates_per_epoch = math.ceil(batches_per_epoch / accumulate)
    scheduler = BurnInSchedule(optimizer, cfg.epochs * updates_per_epoch, cfg.schedule, cfg.burn_in,
                               steps=cfg.steps, scale=cfg.scale)
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    start_epoch, best_map, best_epoch, bad_epochs = 0, -1.0, -1, 0
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        if ema is not None and resume_state.get("ema"):
            ema.load_state_dict({**resume_state["ema"], "module": resume_state["model"]})
        if resume_state.get("scaler"):
            scaler.load_state_dict(resume_state["scaler"])
        start_epoch = int(resume_state["epoch"]) + 1
        best_map = float(resume_state.get("best_map", -1.0))
        best_epoch = int(resume_state.get("best_epoch", -1))
        bad_epochs = int(resume_state.get("bad_epochs", 0))

    train_model = model
    if world > 1:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    settings = validation_settings(cfg)
    model.settings = settings
    val_subset = _subset(val_ds, cfg.limit_val)
    logger = _Logger(out, cfg.tensorboard) if main else None
    if main:
        print(f"train set: {train_set.summary()}")
        print(f"train: {len(train_set)} images, val: {len(val_subset)} images, {len(class_names)} classes, "
              f"batch {cfg.batch} x {world} process(es), accumulate {accumulate} -> {updates_per_epoch} "
              f"updates/epoch, device {device}{', AMP' if use_amp else ''}")

    history = []
    if main and cfg.val_before and resume_state is None:
        metrics = validate(model, val_subset, settings, cfg.batch)
        row = {"epoch": 0, "lr": 0.0, "images": 0, "map50": metrics["map50"], "map50_07": metrics["map50_07"]}
        logger.log(row)
        history.append(row)
        print(f"before training: map50={metrics['map50']:.4f} map50_07={metrics['map50_07']:.4f}", flush=True)
    updates = scheduler.it
    stop = False
    epoch = start_epoch - 1
    for epoch in range(start_epoch, cfg.epochs):
        _seed_all(cfg.seed + 1000 * (epoch + 1) + rank)
        if cfg.freeze_epochs and epoch >= cfg.freeze_epochs and getattr(model, "_frozen_layers", 0):
            unfreeze_layers(model)
            scheduler.set_lr_scale(cfg.unfreeze_lr)
            if main:
                print(f"epoch {epoch + 1}: unfreezing the first {cfg.freeze} layers, learning rate x{cfg.unfreeze_lr}")
        loader = _train_loader(train_set, cfg, epoch, world, rank)
        _train_mode(train_model)
        sums = {"loss": 0.0, "box": 0.0, "obj": 0.0, "noobj": 0.0, "cls": 0.0}
        seen = 0
        t0 = time.perf_counter()
        iterator = loader
        if main and cfg.progress:
            from tqdm import tqdm

            iterator = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, dynamic_ncols=True)
        optimizer.zero_grad(set_to_none=True)
        for i, (images, targets, _) in enumerate(iterator):
            images = images.to(device, non_blocking=True)
            targets = targets.to(device)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                outputs = train_model(images)
            loss, parts = criterion([o.float() for o in outputs], targets, img_size=tuple(images.shape[2:]))
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"loss became {loss.item()} at epoch {epoch + 1}, batch {i + 1} "
                    f"({', '.join(f'{k}={v.item():.4g}' for k, v in parts.items())}); training stopped, "
                    f"{out / 'last.pt'} holds the last good epoch. Lower --lr, raise --burn-in, or check the labels.")
            scaler.scale(loss / accumulate).backward()
            last_batch = i + 1 == batches_per_epoch
            if (i + 1) % accumulate == 0 or last_batch:
                scaler.unscale_(optimizer)
                if cfg.clip_grad > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), max_norm=cfg.clip_grad)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                if ema is not None:
                    ema.update(model)
                updates += 1
            n = images.shape[0]
            seen += n
            sums["loss"] += loss.item() * n
            for k, v in parts.items():
                sums[k] += v.item() * n
            if main and cfg.progress:
                iterator.set_postfix(loss=f"{sums['loss'] / seen:.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
            if cfg.max_updates and updates >= cfg.max_updates:
                stop = True
                break
        train_time = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "lr": scheduler.get_last_lr()[0], "images": seen * world,
               "img_per_s": seen * world / max(train_time, 1e-9), "train_s": train_time}
        row.update({k: v / max(seen, 1) for k, v in sums.items()})

        eval_model = ema.module if ema is not None else model
        metrics = None
        if main and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs or stop):
            t1 = time.perf_counter()
            metrics = validate(eval_model, val_subset, settings, cfg.batch)
            row.update({"map50": metrics["map50"], "map50_07": metrics["map50_07"],
                        "val_s": time.perf_counter() - t1})
            value = metrics["map50"] if not math.isnan(metrics["map50"]) else 0.0
            if value > best_map:
                best_map, best_epoch, bad_epochs = value, epoch, 0
            else:
                bad_epochs += 1
        if main:
            weights, extra = _checkpoint_state(model, ema, optimizer, scheduler, scaler, epoch, best_map,
                                               best_epoch, bad_epochs, cfg)
            save_checkpoint(_unwrap(model), out / "last.pt", weights=weights, **extra)
            if metrics is not None and best_epoch == epoch:
                save_checkpoint(_unwrap(model), out / "best.pt", weights=weights, **extra)
            logger.log(row)
            history.append(row)
            msg = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
            print(msg, flush=True)
        if cfg.stop_at_map and metrics is not None and metrics["map50"] >= cfg.stop_at_map:
            if main:
                print(f"val AP50 {metrics['map50']:.4f} reached --stop-at-map {cfg.stop_at_map}")
            stop = True
        if cfg.patience and bad_epochs >= cfg.patience:
            if main:
                print(f"early stop: no val mAP gain for {cfg.patience} epochs (best {best_map:.4f} at epoch "
                      f"{best_epoch + 1})")
            stop = True
        if world > 1:
            import torch.distributed as dist

            flag = torch.tensor([1.0 if stop else 0.0], device=device)
            dist.broadcast(flag, 0)
            stop = bool(flag.item())
        if stop:
            break
    if logger is not None:
        logger.close()
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    return {"best_map50": best_map, "best_epoch": best_epoch + 1, "epochs_run": epoch + 1 - start_epoch,
            "out": str(out), "history": history, "model": ema.module if ema is not None else model,
            "raw_model": model}


def _loss_kwargs(model: nn.Module, cfg: TrainConfig) -> dict:
    kinds = {getattr(h, "kind", None) for h in model.heads}
    kwargs = dict(cfg.loss_weights)
    if kinds != {"detection"}:
        kwargs.setdefault("box_loss", cfg.box_loss)
    return kwargs


def _checkpoint_state(model, ema, optimizer, scheduler, scaler, epoch, best_map, best_epoch, bad_epochs,
                      cfg: TrainConfig) -> tuple[dict, dict]:
    """``(weights, extra)`` for :func:`yolokit.models.checkpoint.save_checkpoint`: the evaluated weights (EMA
    when on) and what ``--resume`` needs."""
    raw = _unwrap(model)
    weights = ema.module.state_dict() if ema is not None else raw.state_dict()
    return weights, {
        "raw_model": {k: v.detach().cpu() for k, v in raw.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        # the EMA weights are already under "model"; keep only its counters here
        "ema": {k: v for k, v in ema.state_dict().items() if k != "module"} if ema is not None else None,
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "epoch": epoch,
        "best_map": best_map,
        "best_epoch": best_epoch,
        "bad_epochs": bad_epochs,
        "train_args": _plain(asdict(cfg)),
    }


class _Logger:
    """CSV (``results.csv``, one row per epoch, fixed columns) and TensorBoard (``out/tb``)."""

    COLUMNS = ("epoch", "lr", "images", "img_per_s", "train_s", "loss", "box", "obj", "noobj", "cls",
               "map50", "map50_07", "val_s")

    def __init__(self, out: Path, tensorboard: bool):
        self.path = out / "results.csv"
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(out / "tb"))
            except ImportError:  # tensorboard is a dependency, but a trimmed install should still train
                print("tensorboard is not installed; logging to results.csv only")

    def log(self, row: dict) -> None:
        new = not self.path.exists()
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.COLUMNS, restval="", extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
        if self.writer is not None:
            step = int(row["epoch"])
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)):
                    self.writer.add_scalar(k, v, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
