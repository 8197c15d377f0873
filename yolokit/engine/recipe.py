"""The training recipe: every optimizer, schedule and augmentation value a run uses, chosen from the dataset's
size and the batch when no flag sets it, and printed once at the start with where each value came from.

Where a value comes from, in this order:

* ``flag`` -- the user set it (a ``--flag``, a ``--config`` preset, a resumed run's saved options, or code);
* ``cfg`` -- the Darknet cfg's ``[net]`` section sets it (:func:`yolokit.models.cfg.training_recipe`):
  ``learning_rate``, ``momentum``, ``decay``, ``policy``/``steps``/``scales``, ``burn_in``, ``mosaic``, ``batch``.
  Values Darknet counts in iterations of a 500k-iteration run (``burn_in``, ``steps``) are ``cfg, scaled``:
  ``steps`` become fractions of ``max_batches`` and the warm-up keeps the epoch rule below;
* ``scaled`` -- computed from the dataset: the nominal batch (enough optimizer updates per epoch on a small
  set, Darknet's 64 on a large one), the epochs (about :data:`IMAGES_SEEN` images shown in all, between
  :data:`MIN_EPOCHS` and :data:`MAX_EPOCHS`), the warm-up (``warmup_epochs`` epochs, at least
  :data:`WARMUP_MIN_UPDATES` updates, at most a quarter of the run) and the EMA (it averages about the last tenth
  of the run, its decay ramping up over the first twentieth);
* ``default`` -- a constant (:class:`~yolokit.settings.TrainConfig`'s documented default).

This is ultralytics' approach (warm-up in epochs with a floor in updates, ``nbs`` accumulation) with the
length of the run scaled too: Darknet's and ultralytics' fixed numbers (burn-in 1000 updates, nbs 64, 100-300
epochs) are tuned for 100k-image sets and leave a few-hundred-image fine-tune untrained or hours long.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from yolokit.engine.schedule import BurnInSchedule
from yolokit.errors import ConfigError

#: fields the recipe fills when they are None (not set)
RECIPE_FIELDS = ("epochs", "nbs", "lr", "momentum", "weight_decay", "schedule", "steps", "scale", "burn_in",
                 "mosaic", "ema_decay", "ema_tau")
DEFAULTS = {"lr": 0.005, "momentum": 0.9, "weight_decay": 5e-4, "schedule": "cosine", "steps": (0.8, 0.9),
            "scale": 0.1, "mosaic": 0.0}
# images shown in all (epochs x train images) for a dataset-scaled run. Raccoon (160 images): 12 epochs gave
# AP50 0.970/0.966/0.965 over 3 seeds, 20 epochs 0.970/0.962/0.966 (BENCHMARKS.md train-recipe-seeds).
IMAGES_SEEN = 1920
MIN_EPOCHS, MAX_EPOCHS = 10, 100
MIN_UPDATES_PER_EPOCH = 10  # the nominal batch shrinks (down to the batch) until an epoch has this many updates
MAX_NBS = 64  # Darknet's batch, ultralytics' nbs
WARMUP_MIN_UPDATES, WARMUP_MAX_FRACTION = 10, 0.25
EMA_WINDOW_FRACTION, EMA_RAMP_FRACTION = 0.1, 0.05


def cfg_recipe(model: str) -> tuple[dict, str]:
    """The ``[net]`` training keys of ``model`` when it is a Darknet cfg (a path or a configs/models name),
    with the cfg's file name; ``({}, "")`` for checkpoints, torchvision backbones and cfgs without such keys."""
    from yolokit.models import config_path
    from yolokit.models.cfg import training_recipe

    text = str(model)
    if text.startswith("tv:") or Path(text).suffix in (".pt", ".pth", ".onnx"):
        return {}, ""
    path = Path(text) if text.endswith(".cfg") else None
    if path is None:
        try:
            path = config_path(text)
        except ConfigError:
            return {}, ""
    if not path.is_file():
        return {}, ""
    return training_recipe(path)["net"], path.name


def resolve(cfg, n_train: int, world: int = 1, net: dict | None = None) -> tuple[object, dict]:
    """``cfg`` with every recipe field that is None filled in, and ``{field: source}`` (see the module
    docstring). ``n_train``: training images; ``net``: the cfg's ``[net]`` recipe (:func:`cfg_recipe`)."""
    net = dict(net or {})
    values, sources = {}, {}

    def pick(name, cfg_key=None, convert=lambda v: v):
        given = getattr(cfg, name)
        if given is not None:
            values[name], sources[name] = given, "flag"
        elif cfg_key is not None and cfg_key in net:
            values[name], sources[name] = convert(net[cfg_key]), "cfg"
        elif name in DEFAULTS:
            values[name], sources[name] = DEFAULTS[name], "default"
        return given is None and not (cfg_key is not None and cfg_key in net)

    per_step = cfg.batch * world
    if pick("nbs", "batch" if net.get("batch", 1) > 1 else None):
        # enough updates per epoch on a small set: the largest multiple of the batch <= n_train / 10, up to 64
        nbs = per_step * max(1, min(MAX_NBS // per_step, n_train // (MIN_UPDATES_PER_EPOCH * per_step)))
        values["nbs"], sources["nbs"] = max(per_step, nbs), "scaled"
    elif sources["nbs"] == "cfg":
        values["nbs"] = max(per_step, min(values["nbs"], per_step * max(1, n_train // (MIN_UPDATES_PER_EPOCH
                                                                                          * per_step))))
        sources["nbs"] = "cfg, scaled"
    if pick("epochs"):
        values["epochs"] = min(MAX_EPOCHS, max(MIN_EPOCHS, round(IMAGES_SEEN / max(1, n_train))))
        sources["epochs"] = "scaled"
    pick("lr", "learning_rate", float)
    pick("momentum", "momentum", float)
    pick("weight_decay", "decay", float)
    policy = {"steps": "step", "step": "step", "cos": "cosine", "sgdr": "cosine", "constant": "constant"}
    pick("schedule", "policy", lambda p: policy.get(p, "cosine"))
    max_batches = net.get("max_batches") or 0
    pick("steps", "steps" if max_batches else None,
         lambda s: tuple(min(1.0, max(0.0, x / max_batches)) for x in s))
    if sources.get("steps") == "cfg":
        sources["steps"] = "cfg, scaled"
    pick("scale", "scales", lambda s: float(s[0]) if isinstance(s, (list, tuple)) else float(s))
    pick("mosaic", "mosaic", lambda m: float(min(1, max(0, m))))

    accumulate = max(1, round(values["nbs"] / per_step))
    batches = math.ceil(math.ceil(n_train / world) / cfg.batch)
    updates_per_epoch = math.ceil(batches / accumulate)
    total = values["epochs"] * updates_per_epoch
    if pick("burn_in", "burn_in"):
        sources["burn_in"] = "scaled"
    elif sources["burn_in"] == "cfg":
        sources["burn_in"] = "cfg, scaled"
    if sources["burn_in"] != "flag":
        warm = max(round(cfg.warmup_epochs * updates_per_epoch), WARMUP_MIN_UPDATES)
        values["burn_in"] = max(1, min(warm, int(WARMUP_MAX_FRACTION * total)))
    # The EMA averages about the last tenth of the run: decay 1 - 1/window. Its fixed 0.9999 (a 10,000-update
    # window) would, in a run of a few hundred updates, freeze the average on the weights of the first updates
    # after the ramp; its 2000-update ramp would leave it equal to the raw weights (no averaging at all).
    if pick("ema_decay"):
        window = max(2.0, EMA_WINDOW_FRACTION * total)
        values["ema_decay"], sources["ema_decay"] = min(0.9999, round(1 - 1 / window, 6)), "scaled"
    if pick("ema_tau"):
        values["ema_tau"], sources["ema_tau"] = max(1.0, EMA_RAMP_FRACTION * total), "scaled"
    return dataclasses.replace(cfg, **values), sources


def recipe_line(cfg, sources: dict, origin: str = "") -> str:
    """``recipe: epochs 12 (scaled), nbs 16 (scaled), lr 0.001 (cfg yolov3-tiny.cfg), ...``."""
    def show(name):
        v = getattr(cfg, name)
        if isinstance(v, float):
            v = f"{v:g}"
        elif isinstance(v, tuple):
            v = ",".join(f"{x:.3g}" for x in v)
        src = sources.get(name, "flag")
        if src.startswith("cfg") and origin:
            src = src.replace("cfg", f"cfg {origin}", 1)
        return f"{name} {v} ({src})"

    names = [n for n in RECIPE_FIELDS if not (n in ("steps", "scale") and cfg.schedule != "step")]
    return "recipe: " + ", ".join(show(n) for n in names)


def check_schedule(scheduler: BurnInSchedule, cfg, updates_per_epoch: int, resumed: bool = False) -> str | None:
    """A schedule whose learning rate never comes within 10% of ``--lr`` (a burn-in longer than the run, a
    run of too few updates) cannot train: a :class:`ConfigError` saying why and what to change. A resumed run
    near the end of its schedule gets the same text back as a warning (its rate is meant to be low)."""
    start = scheduler.it
    remaining = scheduler.total_steps - start
    if cfg.max_updates:
        remaining = min(remaining, max(0, cfg.max_updates - start))
    peak = scheduler.peak_factor(start, start + remaining) * scheduler.lr_scale
    plan = f"{remaining} optimizer update(s) ({cfg.epochs} epoch(s) x {updates_per_epoch}"
    plan += ")" if not cfg.max_updates else f", --max-updates {cfg.max_updates})"
    if start + remaining < cfg.burn_in:
        fix = (f"Lower --burn-in (or leave it out: {WARMUP_MAX_FRACTION:.0%} of the run at most), or --nbs/--batch "
               f"for more updates per epoch.")
        text = (f"--burn-in {cfg.burn_in} is more than this run's {plan}: the learning rate peaks at "
                f"{peak * cfg.lr:.3g} ({peak:.2g} x --lr {cfg.lr:g}). {fix}")
    elif peak < 0.1:
        text = (f"the learning rate stays at or below {peak * cfg.lr:.3g} ({peak:.2g} x --lr {cfg.lr:g}) for all "
                f"{plan}: training would barely change the weights. Give more --epochs, or a shorter --burn-in.")
    else:
        return None
    if resumed:
        return text
    raise ConfigError(text)
