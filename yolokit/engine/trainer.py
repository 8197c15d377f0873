"""The training loop: one :class:`TrainConfig`, one :func:`train` call (a :class:`Trainer`).

:meth:`Trainer.setup` -- run folder (:mod:`yolokit.engine.runs`: a run never overwrites another), data, the
recipe (:mod:`yolokit.engine.recipe`: every value no flag set, from the dataset size and the cfg's ``[net]``,
printed as one ``recipe:`` line), model, loss, optimizer, schedule, EMA, precision
(:mod:`yolokit.engine.precision`: bf16 autocast on CPUs that have it, channels_last), ``--resume`` state, and
the guards (a schedule that cannot reach its learning rate is an error, a checkpoint from other data). :meth:`Trainer.train_epoch` -- shuffled batches (a ``DistributedSampler``
under torchrun) -> forward in train mode (raw head outputs) -> :func:`yolokit.loss.build_loss` -> backward, with
gradients accumulated up to the nominal batch (``nbs``) before each optimizer update -> learning-rate schedule
and EMA after each update. :meth:`Trainer.end_epoch` -- validation mAP on the EMA weights -> ``best.pt`` (when
the mAP improved; weights only), ``last.pt`` (with the resume state) and ``results.csv``, each written
atomically, in that order (:mod:`yolokit.engine.checkpoints`) -> TensorBoard -> early stop when the mAP has not
improved for ``patience`` epochs. At the end ``best.pt`` becomes fp16 when that leaves its AP unchanged.

What a crash leaves: ``last.pt`` holds the last epoch whose files were all written and carries the rows of
``results.csv``; ``--resume`` rewrites ``results.csv`` from it, so the two always agree after a restart. A
write that fails (disk full, permissions) stops the run with one :class:`SaveError` line saying what is on
disk; the previous files are intact.

Batches come from :mod:`yolokit.data` (``TrainDataset`` + ``build_loader``: letterbox, albumentations, mosaic,
multi-scale; a ``DistributedSampler`` under torchrun).

Determinism: every epoch re-seeds python / numpy / torch (and the data pipeline's augmentation RNG) from
``seed + epoch``, so ``--resume`` from the checkpoint of epoch k replays epochs k+1.. exactly as an
uninterrupted run would (on the same device and thread count).
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from yolokit.engine import batches, distributed, precision, recipe, runs
from yolokit.engine.checkpoints import RunFiles, SaveError
from yolokit.settings import TrainConfig
from yolokit.engine.ema import ModelEMA
from yolokit.engine.loss_weights import LossWeights
from yolokit.engine.optim import build_optimizer, start_momentum
from yolokit.engine.schedule import BurnInSchedule
from yolokit.engine.validation import validate, validation_settings
from yolokit.errors import ConfigError, YolokitError
from yolokit.models.checkpoint import load_checkpoint
from yolokit.models.transfer import build_train_model, freeze_layers, set_train_mode, unfreeze_layers


class NonFiniteLossError(YolokitError):
    """The loss became NaN or infinite; training stops rather than writing broken weights."""


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------- the loop
def _names(names) -> str:
    names = list(names or [])
    return ", ".join(map(str, names[:5])) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")


class Trainer(RunFiles):
    """One training run: :meth:`setup`, then :meth:`train_epoch` and :meth:`end_epoch` per epoch
    (:meth:`run` does all of it and returns :func:`train`'s result)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.frozen = 0  # how many leading layers are frozen now (freeze_layers / unfreeze_layers)
        self.state = runs.RunState()
        self.history: list[dict] = []  # this invocation's rows
        self.stop = False

    # ------------------------------------------------------------------------------------------ setup
    def setup(self) -> bool:
        """Build everything; returns False when there is nothing to train (a finished run resumed)."""
        cfg = self.cfg
        for flag, value in (("--epochs", cfg.epochs), ("--batch", cfg.batch), ("--nbs", cfg.nbs)):
            if (value is not None or flag == "--batch") and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{flag} {value}: must be an integer >= 1")
        self.device = distributed.resolve_device(cfg.device)
        if cfg.workers is None:
            self.cfg = cfg = dataclasses.replace(cfg, workers=batches.loader_workers(self.device))
        dist = distributed.init_from_env(self.device)
        self.rank, self.world, restart = dist.rank, dist.world, dist.attempt
        self.main = self.rank == 0
        folder = runs.choose(cfg.out, cfg.resume, cfg.exist_ok, restart) if self.main else None
        self.folder = distributed.broadcast_object(folder, self.world)
        self.out = self.folder.path
        if self.main:
            print(f"run folder: {self.out} ({self.folder.reason})", flush=True)
            if self.out.is_dir():
                stray = runs.clean_temp_files(self.out)
                if stray:
                    print(f"removed {len(stray)} temp file(s) of an interrupted write: "
                          f"{', '.join(p.name for p in stray)}")
        _seed_all(cfg.seed)

        self._setup_data()
        cfg = self.cfg  # with the recipe's values filled in
        resume = load_checkpoint(self.folder.resume) if self.folder.resume is not None else None
        self._setup_model(resume)
        self._setup_optimization(resume)
        if resume is not None and self.state.epoch + 1 >= cfg.epochs:
            if self.main and self.on_disk is not None:  # its own folder: bring results.csv in line
                self._write("results.csv", lambda f: f.write(runs.csv_text(self.state.rows).encode()), -1)
            if self.main:
                print(f"nothing to train: {self.folder.resume} finished epoch {self.state.epoch + 1} of "
                      f"{cfg.epochs}; pass --epochs N (more than {self.state.epoch + 1}) to extend the run")
            return False
        if self.main:
            self._report()
            self._open_folder()
        self.out = Path(distributed.broadcast_object(str(self.out), self.world))
        if self.main:
            self.logger = runs.TensorBoard(self.out, cfg.tensorboard)
        return True

    def _setup_data(self) -> None:
        from yolokit.data import TrainDataset, load_dataset
        from yolokit.data.augment import AugmentConfig
        from yolokit.data.stream import is_stream_spec, stream_data

        cfg = self.cfg
        net, self.recipe_origin = recipe.cfg_recipe(cfg.model)
        if is_stream_spec(cfg.data):  # a `format: shards` YAML: batches streamed, split across ranks and workers
            mosaic = recipe.resolve(cfg, 1, self.world, net)[0].mosaic  # (mosaic does not depend on the size)
            augment = AugmentConfig(mosaic=mosaic, mixup=cfg.mixup) if cfg.augment else None
            self.train_set, self.val_set = stream_data(
                cfg.data, cfg.train_split, cfg.val_split, size=cfg.imgsz, batch=cfg.batch, augment=augment,
                multiscale=cfg.multiscale, seed=cfg.seed, workers=cfg.workers, limit_train=cfg.limit_train,
                limit_val=cfg.limit_val, rank=self.rank, world=self.world)
            self.class_names = self.train_set.class_names
            self.cfg, self.sources = recipe.resolve(cfg, len(self.train_set), self.world, net)
            return
        train_ds = load_dataset(cfg.data, cfg.train_split, decode=True)  # bad images: reported, left out
        val_ds = load_dataset(cfg.data, cfg.val_split, decode=True)
        for ds in (train_ds, val_ds):
            if self.main and len(ds.problems):
                print(f"{ds.split}: {ds.problems.summary()}")
        if len(train_ds) == 0:
            raise ConfigError(f"{cfg.data}: split '{cfg.train_split}' has no images")
        self.class_names = train_ds.class_names
        train_ds = batches.subset(train_ds, cfg.limit_train)
        cfg, self.sources = recipe.resolve(cfg, len(train_ds), self.world, net)
        self.cfg = cfg
        augment = AugmentConfig(mosaic=cfg.mosaic, mixup=cfg.mixup) if cfg.augment else None
        self.train_set = TrainDataset(train_ds, cfg.imgsz, augment=augment)
        self.val_set = batches.subset(val_ds, cfg.limit_val)

    def _check_resume(self, state: dict) -> None:
        """A checkpoint from other classes (other --data) is refused with what differs, before any weights are
        loaded (which would fail with a tensor size mismatch)."""
        cfg, ckpt = self.cfg, self.folder.resume
        if "optimizer" not in state:  # best.pt and exported checkpoints hold weights only
            raise ConfigError(f"--resume {ckpt}: it holds weights only, no resume state; resume from the run's "
                              f"last.pt, or start a new run from these weights with --model {ckpt}")
        saved_args = state.get("train_args") or {}
        saved = list(state.get("class_names") or [])
        if saved and saved != list(self.class_names):
            raise ConfigError(
                f"--resume {ckpt}: the checkpoint was trained on {len(saved)} class(es) ({_names(saved)}) of "
                f"{saved_args.get('data', 'another dataset')}; --data {cfg.data} has {len(self.class_names)} "
                f"({_names(self.class_names)}). Resume with the run's own --data, or start a new run with "
                f"--model {ckpt} to fine-tune on these classes.")
        if self.main and saved_args.get("data") not in (None, cfg.data):
            print(f"note: resuming on --data {cfg.data} (same classes); the checkpoint was trained on "
                  f"{saved_args['data']}")

    def _setup_model(self, resume: dict | None) -> None:
        from yolokit.loss import build_loss

        cfg = self.cfg
        if resume is not None:
            self._check_resume(resume)
        model = build_train_model(cfg.model, cfg.weights, self.class_names, cfg.keep_head,
                                  fetch_pretrained=resume is None,
                                  log=print if self.main and resume is None else None)
        if resume is not None:
            try:
                model.load_state_dict(resume.get("raw_model", resume["model"]))
            except RuntimeError as exc:
                saved = (resume.get("train_args") or {}).get("model", "another model")
                first = str(exc).strip().splitlines()[1 if "\n" in str(exc).strip() else 0].strip()
                raise ConfigError(f"--resume {self.folder.resume}: its weights do not fit --model {cfg.model} "
                                  f"(the checkpoint was trained as {saved}; {first[:160]}). Resume without "
                                  f"--model, or start a new run with --model {self.folder.resume}") from None
        if cfg.bn_momentum > 0:
            # Darknet's rolling average (momentum 0.01) needs tens of thousands of updates to settle; in a short run
            # the eval-mode statistics would lag the trained weights badly.
            for m in model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.momentum = cfg.bn_momentum
        freeze_layers(model, cfg.freeze)
        self.frozen = max(0, cfg.freeze)
        model.to(self.device, memory_format=torch.channels_last if cfg.channels_last else torch.preserve_format)
        if cfg.sync_bn and self.world > 1:
            if self.device.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            elif self.main:  # torch's SyncBatchNorm runs on GPUs only
                print("--sync-bn ignored: SyncBatchNorm needs CUDA; each process keeps its own BatchNorm statistics")
        kinds = {getattr(h, "kind", None) for h in model.heads}
        kind = "detection" if kinds == {"detection"} else "anchor"
        weights = LossWeights.from_dict(cfg.loss_weights).for_heads(kind)
        if kind != "detection":
            weights.setdefault("box_loss", cfg.box_loss)
        self.criterion = build_loss(model.heads, img_size=(cfg.imgsz, cfg.imgsz), **weights)
        self.model = model
        model.settings = validation_settings(cfg)

    def _setup_optimization(self, resume: dict | None) -> None:
        cfg, model = self.cfg, self.model
        self.optimizer = build_optimizer(model, cfg)
        self.ema = ModelEMA(model, cfg.ema_decay, cfg.ema_tau) if cfg.ema else None
        self.accumulate = max(1, round(cfg.nbs / (cfg.batch * self.world)))
        self.batches_per_epoch = getattr(self.train_set, "batches", None) or \
            math.ceil(math.ceil(len(self.train_set) / self.world) / cfg.batch)  # TrainStream: its own count
        self.updates_per_epoch = math.ceil(self.batches_per_epoch / self.accumulate)
        self.scheduler = BurnInSchedule(self.optimizer, cfg.epochs * self.updates_per_epoch, cfg.schedule,
                                        cfg.burn_in, steps=cfg.steps, scale=cfg.scale)
        self.autocast = precision.autocast_dtype(self.device, cfg.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast == torch.float16)
        warning = recipe.check_schedule(self.scheduler, cfg, self.updates_per_epoch, resumed=resume is not None)
        if warning and self.main:
            print(f"warning: {warning}", flush=True)
        if resume is not None:
            self.optimizer.load_state_dict(resume["optimizer"])
            self.scheduler.load_state_dict(resume["scheduler"])
            if self.ema is not None and resume.get("ema"):
                self.ema.load_state_dict({**resume["ema"], "module": resume["model"]})
            if resume.get("scaler"):
                self.scaler.load_state_dict(resume["scaler"])
            csv_path = self.folder.resume.parent / "results.csv"
            self.state = runs.RunState.from_checkpoint(resume, csv_path)
            self.resumed_epoch = self.state.epoch
            if self.folder.resume.resolve() == (self.out / "last.pt").resolve():
                self.on_disk = self.state.epoch
        self.updates = self.scheduler.it
        self.train_model = model
        if self.world > 1:
            self.train_model = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if cfg.compile:  # the weights stay self.model's: checkpoints and the EMA never see the compiled wrapper
            self.train_model = torch.compile(self.train_model)

    def _report(self) -> None:
        """The run in one line, and a warning when the schedule cannot reach the learning rate."""
        cfg = self.cfg
        print(f"train set: {self.train_set.summary()}")
        print(f"train: {len(self.train_set)} images, val: {len(self.val_set)} images, {len(self.class_names)} "
              f"classes, batch {cfg.batch} x {self.world} process(es), accumulate {self.accumulate} -> "
              f"{self.updates_per_epoch} updates/epoch, device {self.device}, "
              f"{precision.describe(self.autocast, cfg.channels_last)}{', torch.compile' if cfg.compile else ''}")
        print(recipe.recipe_line(cfg, self.sources, self.recipe_origin), flush=True)

    def _open_folder(self) -> None:
        """Claim a new run folder (its results.csv, created exclusively), or bring a continued run's
        results.csv in line with the checkpoint it continues from."""
        if self.folder.claim is not None:
            try:
                claimed = runs.claim(self.folder.claim, runs.csv_text([]))
            except OSError as exc:
                raise SaveError(f"cannot create the run folder {self.folder.path}: {exc.strerror or exc}") from None
            if claimed != self.out:
                print(f"run folder: {claimed} ({self.out} was taken by another run a moment ago)")
                self.out = claimed
        self._write("results.csv", lambda f: f.write(runs.csv_text(self.state.rows).encode()), -1)

    # ------------------------------------------------------------------------------------------ epochs
    def train_epoch(self, epoch: int) -> dict:
        """Train one epoch; returns its results.csv row. Sets :attr:`stop` when ``max_updates`` is reached."""
        cfg, model, main = self.cfg, self.model, self.main
        _seed_all(cfg.seed + 1000 * (epoch + 1) + self.rank)
        if cfg.freeze_epochs and epoch >= cfg.freeze_epochs and self.frozen:
            unfreeze_layers(model)
            start_momentum(self.optimizer)
            self.frozen = 0
            self.scheduler.set_lr_scale(cfg.unfreeze_lr)
            if main:
                print(f"epoch {epoch + 1}: unfreezing the first {cfg.freeze} layers, learning rate x{cfg.unfreeze_lr}")
        loader = batches.train_loader(self.train_set, cfg, epoch, self.world, self.rank)
        set_train_mode(self.train_model, self.frozen)
        sums = {"loss": 0.0, "box": 0.0, "obj": 0.0, "noobj": 0.0, "cls": 0.0}
        seen = 0
        t0 = time.perf_counter()
        iterator = loader
        if main and cfg.progress:
            from tqdm import tqdm

            iterator = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, dynamic_ncols=True)
        self.optimizer.zero_grad(set_to_none=True)
        for i, (images, targets, _) in enumerate(iterator):
            images = images.to(self.device, non_blocking=True)
            targets = targets.to(self.device)
            if self.cfg.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=self.autocast or torch.float32,
                                enabled=self.autocast is not None):
                outputs = self.train_model(images)
            loss, parts = self.criterion([o.float() for o in outputs], targets, img_size=tuple(images.shape[2:]))
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"loss became {loss.item()} at epoch {epoch + 1}, batch {i + 1} "
                    f"({', '.join(f'{k}={v.item():.4g}' for k, v in parts.items())}); training stopped. "
                    f"On disk: {self.on_disk_text()}. Lower --lr, raise --burn-in, or check the labels.")
            self.scaler.scale(loss / self.accumulate).backward()
            if (i + 1) % self.accumulate == 0 or i + 1 == self.batches_per_epoch:
                self._update()
            n = images.shape[0]
            seen += n
            sums["loss"] += loss.item() * n
            for k, v in parts.items():
                sums[k] += v.item() * n
            if main and cfg.progress:
                iterator.set_postfix(loss=f"{sums['loss'] / seen:.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
            if cfg.max_updates and self.updates >= cfg.max_updates:
                self.stop = True
                break
        if seen == 0:
            raise YolokitError(f"epoch {epoch + 1} trained on no images ({len(self.train_set)} in the train set, "
                               f"batch {cfg.batch} x {self.world} process(es))")
        train_time = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "lr": self.scheduler.get_last_lr()[0], "images": seen * self.world,
               "img_per_s": seen * self.world / max(train_time, 1e-9), "train_s": train_time}
        row.update({k: v / max(seen, 1) for k, v in sums.items()})
        return row

    def _update(self) -> None:
        """One optimizer update from the accumulated gradients, then the schedule and the EMA."""
        self.scaler.unscale_(self.optimizer)
        if self.cfg.clip_grad > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=self.cfg.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.updates += 1

    @property
    def eval_model(self) -> nn.Module:
        """The weights that are validated and saved as ``model``: the EMA when on."""
        return self.ema.module if self.ema is not None else self.model

    def validate_now(self, row: dict) -> dict:
        """Validate :attr:`eval_model`, add the metrics to ``row``; returns them."""
        t1 = time.perf_counter()
        metrics = validate(self.eval_model, self.val_set, self.model.settings, self.cfg.batch)
        row.update({"map50": metrics["map50"], "map50_07": metrics["map50_07"], "val_s": time.perf_counter() - t1})
        return metrics

    def end_epoch(self, epoch: int, row: dict) -> bool:
        """Validate (when due), save best.pt / last.pt / results.csv, log, decide on stopping; returns whether
        the run stops here (the same answer on every process)."""
        cfg, st, main = self.cfg, self.state, self.main
        metrics = None
        if main and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs or self.stop):
            metrics = self.validate_now(row)
            value = metrics["map50"] if not math.isnan(metrics["map50"]) else 0.0
            if value > st.best_map:
                st.best_map, st.best_epoch, st.bad_epochs = value, epoch, 0
            else:
                st.bad_epochs += 1
        st.epoch = epoch
        if main:
            st.rows.append(row)
            self.history.append(row)
            self.save(epoch, best=metrics is not None and st.best_epoch == epoch)
            self.logger.log(row)
            print(runs.row_text(row), flush=True)
        if cfg.stop_at_map and metrics is not None and metrics["map50"] >= cfg.stop_at_map:
            print(f"val AP50 {metrics['map50']:.4f} reached --stop-at-map {cfg.stop_at_map}")
            self.stop = True
        if cfg.patience and st.bad_epochs >= cfg.patience:
            if main:
                print(f"early stop: no val mAP gain for {cfg.patience} epochs (best {st.best_map:.4f} at epoch "
                      f"{st.best_epoch + 1})")
            self.stop = True
        self.stop = distributed.broadcast_flag(self.stop, self.world, self.device)
        return self.stop

    # ------------------------------------------------------------------------------------------ all
    def run(self) -> dict:
        """Set up, train every remaining epoch, return :func:`train`'s result."""
        go = self.setup()
        cfg = self.cfg  # with the recipe filled in
        start = self.state.epoch + 1
        epoch = start - 1
        if go:
            if self.main and cfg.val_before and self.folder.resume is None:
                metrics = validate(self.model, self.val_set, self.model.settings, cfg.batch)
                row = {"epoch": 0, "lr": 0.0, "images": 0, "map50": metrics["map50"], "map50_07": metrics["map50_07"]}
                self.state.rows.append(row)
                self.history.append(row)
                self.logger.log(row)
                print(f"before training: map50={metrics['map50']:.4f} map50_07={metrics['map50_07']:.4f}", flush=True)
            try:
                with precision.flush_denormals(self.device.type == "cpu"):
                    for epoch in range(start, cfg.epochs):
                        row = self.train_epoch(epoch)
                        if self.end_epoch(epoch, row):
                            break
            finally:
                if self.main:
                    self.logger.close()
            if self.main:
                print(self.ship_best(), flush=True)
            distributed.barrier(self.world)
        return {"best_map50": self.state.best_map, "best_epoch": self.state.best_epoch + 1,
                "epochs_run": epoch + 1 - start, "out": str(self.out), "history": self.history,
                "model": self.eval_model, "raw_model": self.model}


def train(cfg: TrainConfig) -> dict:
    """Run training; returns ``{"best_map50", "best_epoch", "epochs_run", "out" (the run folder), "history"
    (this call's results.csv rows), "model" (the evaluated weights: EMA when on), "raw_model"}``.

    Raises :class:`NonFiniteLossError` when the loss goes NaN/inf and :class:`SaveError` when a run file cannot
    be written (YolokitErrors: the CLI prints one line saying what is on disk)."""
    return Trainer(cfg).run()
