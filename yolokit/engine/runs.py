"""Run folders: where a training run writes, chosen so that one run never overwrites another.

* A new run into a folder that already holds a run (``last.pt``, ``best.pt`` or ``results.csv``) goes to
  the next free name: ``runs/train`` -> ``runs/train2``, ``runs/train3``, ... (``runs/yolov3`` ->
  ``runs/yolov3-2``, so a name ending in a digit stays readable). ``exist_ok`` writes into the folder itself.
* ``--resume CKPT`` continues in CKPT's own folder only when that folder's ``last.pt`` *is* CKPT (the same
  file); a copy, a ``best.pt`` or an older snapshot starts a new folder (the next free name of ``--out``, or of
  CKPT's folder when no ``--out`` is given), so the run it came from is never touched.
* Under a torchrun elastic restart (``TORCHELASTIC_RESTART_COUNT`` > 0) the workers continue the newest run
  of the series they started (and resume from its ``last.pt`` when one was written).
* Temp files of killed atomic writes (``last.pt.XXXX.tmp``) are removed when a run starts in the folder.

What a run writes there besides checkpoints: ``results.csv`` (:func:`csv_text`, one row per epoch, rebuilt from
:class:`RunState` after a resume), TensorBoard scalars (:class:`TensorBoard`, ``tb/``) and one printed line per
epoch (:func:`row_text`). A value that does not exist (a class with no validation box: per-class AP None) is an
empty CSV cell, "n/a" in the printed line and no TensorBoard point.

A folder is claimed by creating its ``results.csv`` exclusively (``O_EXCL``), so two runs started at the same
moment into the same ``--out`` still get two folders.

Pure Python: no torch at import (TensorBoard's writer is imported when a run opens it).
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

RUN_FILES = ("last.pt", "best.pt", "results.csv")
DEFAULT_OUT = "runs/train"


@dataclass(frozen=True)
class RunFolder:
    """Where a run writes and why (``reason`` is printed at the start of the run)."""

    path: Path
    reason: str
    claim: Path | None  # a new run: claim the first free folder of this series before the first write
    resume: Path | None = None  # the checkpoint to continue from (--resume, or last.pt after an elastic restart)


def holds_run(folder: Path) -> bool:
    """Whether ``folder`` holds (part of) a training run."""
    return any((Path(folder) / name).exists() for name in RUN_FILES)


def folder_series(folder: Path):
    """``folder``, then its numbered siblings: train, train2, train3, ... (yolov3, yolov3-2, ...)."""
    folder = Path(folder)
    yield folder
    sep = "-" if folder.name[-1:].isdigit() else ""
    for n in count(2):
        yield folder.with_name(f"{folder.name}{sep}{n}")


def next_free(folder: Path) -> Path:
    """``folder`` when it holds no run, else the first numbered sibling that holds none."""
    return next(f for f in folder_series(folder) if not holds_run(f))


def newest_run(folder: Path) -> Path:
    """The last folder of ``folder``'s series that holds a run (``folder`` itself when none does)."""
    newest = Path(folder)
    for f in folder_series(folder):
        if not holds_run(f):
            return newest
        newest = f


def is_own_last(ckpt: Path) -> bool:
    """Whether ``ckpt`` is the ``last.pt`` of its own folder (the same file, not a copy)."""
    last = Path(ckpt).parent / "last.pt"
    try:
        return last.exists() and os.path.samefile(ckpt, last)
    except OSError:
        return False


def choose(out: str | None, resume: str | None = None, exist_ok: bool = False,
           restart: int = 0) -> RunFolder:
    """The folder a run writes to (see the module docstring). ``restart``: torchrun's restart count."""
    if resume is not None:
        ckpt = Path(resume)
        if is_own_last(ckpt) and (out is None or Path(out).resolve() == ckpt.parent.resolve()):
            return RunFolder(ckpt.parent, f"continuing the run of {ckpt}", claim=None, resume=ckpt)
        base = Path(out) if out is not None else ckpt.parent
        why = f"{ckpt} is not its folder's last.pt: a new run folder, the original is left as it is"
    else:
        ckpt = None
        base = Path(out if out is not None else DEFAULT_OUT)
        why = "a new run"
    if restart > 0:  # the first attempt of this elastic job chose the newest folder of the series
        folder = newest_run(base) if not exist_ok else base
        last = folder / "last.pt"
        if last.is_file():
            return RunFolder(folder, f"elastic restart {restart}: resuming from {last}", claim=None, resume=last)
        return RunFolder(folder, f"elastic restart {restart}: starting again", claim=None, resume=ckpt)
    if exist_ok and (ckpt is None or out is not None):  # never into the folder a resumed checkpoint came from
        return RunFolder(base, f"{why}; --exist-ok: writing into {base} even if it holds a run", claim=None,
                         resume=ckpt)
    folder = next_free(base)
    if folder != base:
        why += f"; {base} already holds a run, --exist-ok would write into it"
    return RunFolder(folder, why, claim=base, resume=ckpt)


def claim(base: Path, header: str) -> Path:
    """Create ``results.csv`` (holding ``header``) exclusively in the first folder of ``base``'s series that
    holds no run; that folder then belongs to this run (a run started at the same moment gets the next one)."""
    for candidate in folder_series(base):
        if holds_run(candidate):
            continue
        candidate.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(candidate / "results.csv", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # claimed a moment ago by another run
            continue
        with os.fdopen(fd, "w") as f:
            f.write(header)
        return candidate


def clean_temp_files(folder: Path, names=RUN_FILES) -> list[Path]:
    """Remove the temp files that killed atomic writes of ``names`` (default: the run files) left in ``folder``
    (:func:`yolokit.fileio.write_atomic` names them ``NAME.<random>.tmp``); returns them."""
    stray = [p for name in names for p in Path(folder).glob(f"{name}.*.tmp") if p.is_file()]
    for p in stray:
        p.unlink(missing_ok=True)
    return stray


# ----------------------------------------------------------------------------- what a run writes
@dataclass
class RunState:
    """Where a run stands; saved in every checkpoint and restored by ``--resume``."""

    epoch: int = -1  # the last finished epoch (0-based); -1 before the first
    best_map: float = -1.0
    best_epoch: int = -1
    bad_epochs: int = 0
    rows: list = field(default_factory=list)  # every results.csv row so far (also those of resumed runs)

    def to_checkpoint(self) -> dict:
        return {"epoch": self.epoch, "best_map": self.best_map, "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs, "results": [dict(r) for r in self.rows]}

    @classmethod
    def from_checkpoint(cls, state: dict, csv_path: Path | None = None) -> "RunState":
        """The state a checkpoint holds. Checkpoints written before rows were carried: the rows of the
        ``results.csv`` beside them, up to the checkpoint's epoch."""
        epoch = int(state["epoch"])
        rows = state.get("results")
        if rows is None:
            rows = []
            if csv_path is not None and csv_path.is_file():
                with open(csv_path, newline="") as f:
                    rows = [{k: _number(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)
                            if r.get("epoch", "").isdigit() and int(r["epoch"]) <= epoch + 1]
        return cls(epoch, float(state.get("best_map", -1.0)), int(state.get("best_epoch", -1)),
                   int(state.get("bad_epochs", 0)), [dict(r) for r in rows])


def _number(text: str):
    try:
        return int(text)
    except ValueError:
        return float(text)


CSV_COLUMNS = ("epoch", "lr", "images", "img_per_s", "train_s", "loss", "box", "obj", "noobj", "cls",
               "map50", "map50_07", "val_s")


def csv_text(rows: list[dict]) -> str:
    """``results.csv``: one row per epoch, fixed columns (empty where an epoch was not validated, or a value
    does not exist: None)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, restval="", extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
    return buf.getvalue()


def row_text(row: dict) -> str:
    """One epoch's row as the line printed after it (``key=value``; None is ``n/a``)."""
    def fmt(v):
        if v is None:
            return "n/a"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    return " ".join(f"{k}={fmt(v)}" for k, v in row.items())


class TensorBoard:
    """TensorBoard scalars (``out/tb``), one step per epoch; a no-op when off or not installed. Values that do
    not exist (None, NaN) are left out rather than drawn as 0."""

    def __init__(self, out: Path, enabled: bool):
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(Path(out) / "tb"))
            except ImportError:  # tensorboard is a dependency, but a trimmed install should still train
                print("tensorboard is not installed; logging to results.csv only")

    def log(self, row: dict) -> None:
        if self.writer is None:
            return
        step = int(row["epoch"])
        for k, v in row.items():
            if k == "epoch" or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if isinstance(v, float) and math.isnan(v):
                continue
            self.writer.add_scalar(k, v, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
