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

A folder is claimed by creating its ``results.csv`` exclusively (``O_EXCL``), so two runs started at the same
moment into the same ``--out`` still get two folders.

Pure Python: no torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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


def _series(folder: Path):
    """``folder``, then its numbered siblings: train, train2, train3, ... (yolov3, yolov3-2, ...)."""
    folder = Path(folder)
    yield folder
    sep = "-" if folder.name[-1:].isdigit() else ""
    for n in count(2):
        yield folder.with_name(f"{folder.name}{sep}{n}")


def next_free(folder: Path) -> Path:
    """``folder`` when it holds no run, else the first numbered sibling that holds none."""
    return next(f for f in _series(folder) if not holds_run(f))


def newest_run(folder: Path) -> Path:
    """The last folder of ``folder``'s series that holds a run (``folder`` itself when none does)."""
    newest = Path(folder)
    for f in _series(folder):
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
    for candidate in _series(base):
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
    (:func:`yolokit.models.checkpoint.write_atomic` names them ``NAME.<random>.tmp``); returns them."""
    stray = [p for name in names for p in Path(folder).glob(f"{name}.*.tmp") if p.is_file()]
    for p in stray:
        p.unlink(missing_ok=True)
    return stray
