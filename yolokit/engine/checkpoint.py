"""Checkpoints: one ``torch.save`` dict, written atomically, loadable with ``weights_only=True``.

Keys (the model contract's three first, so ``yolokit.load(ckpt)`` works on a training checkpoint):
``model`` (state_dict; the EMA weights when EMA is on, since those are the ones evaluated), ``cfg`` (the cfg
text; None for torchvision-backbone models, which have ``tv_arch`` instead), ``class_names``,
``darknet_header``, and for ``--resume``: ``raw_model`` (the non-averaged weights), ``optimizer``, ``scheduler``,
``ema`` (its counters; its weights are ``model``), ``scaler``, ``epoch`` (last finished, 0-based), ``best_map``,
``best_epoch``, ``bad_epochs`` and ``train_args`` (plain types only). RNG state is not needed: every epoch
reseeds from ``seed + epoch``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from yolokit.errors import WeightsError


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, fsync, then
    ``os.replace`` -- a crash mid-write leaves the previous checkpoint intact, never a truncated one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Read a checkpoint with ``weights_only=True`` (no pickled code runs). Raises WeightsError naming the
    file when it is missing, truncated or not a yolokit checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise WeightsError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise WeightsError(f"{path}: not a yolokit checkpoint (expected a dict with 'model', 'cfg', "
                           f"'class_names')")
    return state
