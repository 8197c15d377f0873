"""What a run writes and what it says when a write fails: ``best.pt`` (weights only, fp16 when that leaves the
validation AP unchanged: the file a user ships), ``last.pt`` (weights plus everything ``--resume`` needs) and
``results.csv``, each atomically (:func:`yolokit.fileio.write_atomic`), read back weights-only.

:class:`RunFiles` is the part of :class:`~yolokit.engine.trainer.Trainer` that writes them (a mixin: it reads
the trainer's model, EMA, optimizer, state and folder).
"""

from __future__ import annotations

import errno
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from yolokit.engine import runs
from yolokit.errors import YolokitError
from yolokit.fileio import write_atomic
from yolokit.models.checkpoint import checkpoint_state


class SaveError(YolokitError):
    """A run file could not be written (disk full, permissions); the files already on disk are intact."""


def unwrap(model: nn.Module) -> nn.Module:
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


def _plain_weights(model: nn.Module) -> dict:
    """``model``'s state_dict on the CPU in the default (NCHW) layout, whatever layout it trains in."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


class RunFiles:
    """Writing best.pt / last.pt / results.csv for a :class:`~yolokit.engine.trainer.Trainer`."""

    on_disk: int | None = None  # the epoch out/last.pt holds (None: this run has written none)

    def checkpoint(self) -> dict:
        """``last.pt``: the evaluated weights (EMA when on) as ``model``, plus what ``--resume`` needs."""
        raw = unwrap(self.model)
        ema = self.ema
        return checkpoint_state(raw, _plain_weights(self.eval_model), **{
            "raw_model": _plain_weights(raw),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            # the EMA weights are already under "model"; keep only its counters here
            "ema": {k: v for k, v in ema.state_dict().items() if k != "module"} if ema is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            **self.state.to_checkpoint(),
            "train_args": _plain({**asdict(self.cfg), "out": str(self.out)}),
        })

    def best_checkpoint(self, half: bool = False) -> dict:
        """``best.pt``: what a user ships -- the evaluated weights (fp16 when ``half``), the cfg, the class names
        and the validation settings; no optimizer or resume state (``yolokit.load`` and ``--model`` read it)."""
        weights = _plain_weights(self.eval_model)
        if half:
            weights = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
        return checkpoint_state(unwrap(self.model), weights, epoch=self.state.epoch, best_map=self.state.best_map,
                                best_epoch=self.state.best_epoch, half=half)

    def save(self, epoch: int, best: bool) -> None:
        """best.pt (when ``best``), last.pt, then results.csv -- each atomic, in this order, so that whatever
        fails, last.pt and results.csv on disk describe the same epoch (or results.csv is one row behind, and
        ``--resume`` rewrites it from last.pt)."""
        if best:
            state = self.best_checkpoint()
            self._write("best.pt", lambda f: torch.save(state, f), epoch)
        state = self.checkpoint()
        self._write("last.pt", lambda f: torch.save(state, f), epoch)
        self.on_disk = epoch
        self._write("results.csv", lambda f: f.write(runs.csv_text(self.state.rows).encode()), epoch)

    def ship_best(self) -> str:
        """At the end of a run: rewrite best.pt in fp16 when that leaves its validation AP50 unchanged (within
        0.001; CPU and GPU inference still run in fp32 after loading); returns the line naming both files with
        their sizes."""
        import copy

        from yolokit.engine.validation import validate

        best, note = self.out / "best.pt", ""
        if best.is_file() and self.state.best_map >= 0:
            state = torch.load(best, map_location="cpu", weights_only=True)
            if not state.get("half"):
                halved = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
                probe = copy.deepcopy(unwrap(self.eval_model))
                probe.load_state_dict(halved)  # back to fp32 parameters holding the fp16-rounded values
                ap = validate(probe, self.val_set, self.model.settings, self.cfg.batch)["map50"]
                if ap is not None and abs(ap - self.state.best_map) <= 0.001:
                    state.update(model=halved, half=True)
                    self._write("best.pt", lambda f: torch.save(state, f), self.state.epoch)
                    note = " fp16 (val AP50 unchanged),"
                else:
                    note = f" fp32 (fp16 weights would change val AP50 to {ap:.4f}),"

        def size(p):
            return f"{p.stat().st_size / 2**20:.1f} MB" if p.is_file() else "absent"

        return (f"best.pt {size(best)},{note} weights only; last.pt {size(self.out / 'last.pt')}, with the "
                f"resume state (yolokit train --resume {self.out / 'last.pt'})")

    def _write(self, name: str, write, epoch: int) -> None:
        try:
            write_atomic(self.out / name, write)
        except OSError as exc:
            why = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                   errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                   errno.EROFS: "read-only file system"}.get(exc.errno, exc.strerror or str(exc))
            when = f"after epoch {epoch + 1}" if epoch >= 0 else "at the start"
            behind = name == "results.csv" and epoch >= 0  # last.pt of this epoch is already written
            raise SaveError(f"cannot write {self.out / name} {when}: {why}; training stopped. On disk: "
                            f"{self.on_disk_text(csv_behind=behind)}. Free space (or fix the "
                            f"permissions), then continue with: yolokit train --resume "
                            f"{self._resume_hint()}") from None

    def _resume_hint(self) -> Path:
        if self.on_disk is not None or self.folder.resume is None:
            return self.out / "last.pt"
        return self.folder.resume

    def on_disk_text(self, csv_behind: bool = False) -> str:
        """What the run folder holds now, for messages after a failure."""
        last = self.out / "last.pt"
        if self.on_disk is None:
            if self.folder.resume is not None:
                return (f"no checkpoint in {self.out} yet; {self.folder.resume} still holds epoch "
                        f"{self.resumed_epoch + 1}")
            return f"no checkpoint yet ({last} is written at the end of the first epoch)"
        text = f"{last} holds epoch {self.on_disk + 1}"
        if csv_behind:
            return text + f"; results.csv still ends one epoch earlier (--resume rewrites it from {last.name})"
        return text + ", and results.csv matches it"
