"""Checkpoints: one ``torch.save`` dict, written atomically, read back with ``weights_only=True``.

One pair of functions for every checkpoint yolokit writes or reads (``model.save``-style exports, the trainer's
``last.pt``/``best.pt``, user code):

* :func:`save_checkpoint(model, path, **extra) <save_checkpoint>` -> the ``Path`` written;
* :func:`load_checkpoint(path) <load_checkpoint>` -> the dict (``yolokit.load(path)`` builds the model from it).

Keys: ``model`` (state_dict; the trainer passes the EMA weights, the ones it validated), ``cfg`` (Darknet cfg
text; None for torchvision-backbone models, which have ``tv_arch``), ``class_names``, ``darknet_header``,
``settings`` (the validation settings ``imgsz``/``conf``/``iou``/``max_det`` that ``yolokit eval`` and ``detect``
default to), and whatever ``extra`` the caller adds (the trainer's ``raw_model``, ``optimizer``, ``scheduler``,
``ema``, ``scaler``, ``epoch``, ``best_map``, ``best_epoch``, ``bad_epochs``, ``train_args``; plain types only).
"""

from __future__ import annotations

from pathlib import Path

import torch

from yolokit.errors import WeightsError
from yolokit.fileio import write_atomic


def checkpoint_state(model, weights: dict | None = None, **extra) -> dict:
    """The checkpoint dict of ``model`` (its own state_dict unless ``weights`` is given) plus ``extra``."""
    weights = model.state_dict() if weights is None else weights
    state = {
        "model": {k: v.detach().cpu() for k, v in weights.items()},
        "cfg": getattr(model, "cfg_text", None),
        "class_names": list(getattr(model, "class_names", None) or []) or None,
        "darknet_header": list(getattr(model, "weights_header", ()) or ()),
        "tv_arch": getattr(model, "tv_arch", None),
        "settings": dict(getattr(model, "settings", None) or {}),
    }
    state.update(extra)
    return state


def save_checkpoint(model, path: str | Path, *, weights: dict | None = None, **extra) -> Path:
    """Write ``model``'s checkpoint (:func:`checkpoint_state`) to ``path`` atomically; returns the path.

    ``weights``: the state_dict to store as ``model`` (default the model's own); ``extra``: more entries."""
    state = checkpoint_state(model, weights, **extra)
    return write_atomic(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Read a checkpoint with ``weights_only=True`` (no pickled code runs). Raises :class:`WeightsError` naming
    the file when it is missing, empty, truncated, pickled or not a yolokit checkpoint."""
    from yolokit.fileio import check_regular

    path = Path(path)
    check_regular(path, "checkpoint", None, WeightsError)  # /dev/zero or a FIFO: one line, not 12 GB read
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise WeightsError(f"{path}: not a readable yolokit checkpoint ({_load_failure(path, exc)})") from None
    if not isinstance(state, dict) or "model" not in state or not isinstance(state["model"], dict):
        raise WeightsError(f"{path}: not a yolokit checkpoint (expected a dict with 'model', 'cfg', "
                           f"'class_names')")
    if state.get("cfg") is None and not state.get("tv_arch"):
        raise WeightsError(f"{path}: checkpoint has neither a Darknet 'cfg' nor a 'tv_arch' entry")
    return state


def _load_failure(path: Path, exc: Exception) -> str:
    """What went wrong, in words: torch's own messages are long, multi-line or just a key (``'101'``)."""
    text = str(exc)
    if path.stat().st_size == 0:
        return "empty file"
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic != b"PK" and magic[:1] != b"\x80":  # neither torch.save's zip nor its legacy pickle format
        return "not a torch.save file"
    if "Weights only load failed" in text:
        return "it holds pickled objects; yolokit loads weights only and runs no code from a file"
    if "central directory" in text or "zip archive" in text:
        return "truncated, or not a torch.save file"
    if isinstance(exc, (KeyError, EOFError)) or "load key" in text:
        return "not a torch.save file"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:160]


def model_from_checkpoint(state: dict, source: str = "<checkpoint>"):
    """Rebuild the model (Darknet cfg model or torchvision-backbone model) a checkpoint dict describes, in eval
    mode, with its class names and settings."""
    if state.get("cfg") is not None:
        from yolokit.models.darknet import DarknetModel

        model = DarknetModel(state["cfg"], f"{source}[cfg]")
        if state.get("darknet_header"):
            model.weights_header = tuple(state["darknet_header"])
        what = "its cfg"
    else:
        from yolokit.models.tv import TvYolo

        arch = state["tv_arch"]
        model = TvYolo(arch["backbone"], int(arch["num_classes"]))
        what = f"tv:{arch['backbone']}"
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise WeightsError(f"{source}: weights do not fit {what} ({first})") from None
    model.class_names = list(state.get("class_names") or []) or None
    model.settings = _checked_settings(state.get("settings"), source)
    return model.eval()


def _checked_settings(settings, source: str) -> dict:
    """A checkpoint's saved settings, checked like the flags they stand for (``imgsz`` 2**20 would allocate
    terabytes at the first image)."""
    from yolokit.errors import ConfigError
    from yolokit.settings import check_imgsz

    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise WeightsError(f"{source}: saved settings are a {type(settings).__name__}, expected a dict")
    settings = dict(settings)
    if settings.get("imgsz") is not None:
        try:
            settings["imgsz"] = check_imgsz("imgsz", settings["imgsz"])
        except ConfigError as exc:
            raise WeightsError(f"{source}: saved settings.imgsz {str(exc).split(' ', 1)[-1]}") from None
    return settings
