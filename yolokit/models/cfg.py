"""Reading Darknet ``.cfg`` files: sections of ``key=value`` lines, checked against the keys each layer knows
(and the ``.names`` files beside them: :func:`read_names`).

A cfg is read once, here, into a list of :class:`Section`; the layer builders in :mod:`yolokit.models.darknet`
take typed values from it and never look at the text again. Every problem is a :class:`ConfigError` that names
the file and line. Darknet itself silently ignores keys it does not know; yolokit refuses them, because a typo
(``filter=``) or a feature yolokit does not implement would otherwise change the network without a word.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from yolokit.errors import ConfigError

# Keys Darknet reads for [net]; most only matter to Darknet's own trainer. yolokit keeps them (model.net) so that
# a trainer may use them, and accepts them so that real cfgs from pjreddie/darknet and AlexeyAB/darknet load.
_NET_KEYS = {
    "batch", "subdivisions", "width", "height", "channels", "inputs", "momentum", "decay", "angle", "saturation",
    "exposure", "hue", "learning_rate", "burn_in", "max_batches", "policy", "steps", "scales", "step", "gamma",
    "power", "max_crop", "min_crop", "aspect", "flip", "mosaic", "mixup", "cutmix", "blur", "gaussian_noise",
    "letter_box", "adam", "b1", "b2", "eps", "max_chart_loss", "time_steps", "track", "augment_speed",
    "sequential_subdivisions", "try_fix_nan", "loss_scale", "dynamic_minibatch", "optimized_memory",
    "workspace_size_limit_mb", "random", "sgdr_cycle", "sgdr_mult", "seq_scales", "rate", "mosaic_bound",
    "adversarial_lr", "attention", "show_imgs", "use_cuda_graph", "resize_step", "center", "label_smooth_eps",
    "contrastive", "unsupervised", "max_epochs", "num_boxes", "equidistant_point", "init_sequential_subdivisions",
    # AlexeyAB's later [net] keys: EMA of weights, contrastive learning, bad-label rejection, the saved image count
    "ema_alpha", "scale", "seen", "contrastive_jit_flip", "contrastive_color", "learning_rate_min",
    "badlabels_rejection_percentage", "num_sigmas_reject_badlabels", "weights_reject_freq",
}
_TRAIN_ONLY_HEAD_KEYS = {
    "jitter", "random", "object_scale", "noobject_scale", "class_scale", "coord_scale", "rescore", "thresh",
    "bias_match", "absolute", "max", "ignore_thresh", "truth_thresh", "iou_thresh", "cls_normalizer",
    "iou_normalizer", "obj_normalizer", "iou_loss", "iou_thresh_kind", "nms_kind", "beta_nms", "max_delta",
    "counters_per_class", "label_smooth_eps", "objectness_smooth", "focal_loss", "resize", "map", "log",
    "track_history_size", "sim_thresh", "dets_for_track", "dets_for_show", "embedding_layer",
    "delta_normalizer", "show_details", "uc_normalizer", "beta1", "track_ciou_norm", "yolo_point",
}

#: For every layer yolokit builds: the keys it accepts. Keys listed in ``_MUST_BE`` are accepted only with the
#: value that means "feature off", since yolokit does not implement the feature.
KNOWN_KEYS: dict[str, set[str]] = {
    "net": _NET_KEYS,
    "convolutional": {"filters", "size", "stride", "stride_x", "stride_y", "pad", "padding", "groups", "activation",
                      "batch_normalize", "dilation", "binary", "xnor", "flipped", "dot", "antialiasing",
                      "share_index", "assisted_excitation", "deform", "sway", "rotate", "stretch", "stretch_sway",
                      "stopbackward", "bin_output", "train_only_bn", "coordconv"},
    "maxpool": {"size", "stride", "stride_x", "stride_y", "padding", "maxpool_depth", "antialiasing",
                "out_channels"},
    "avgpool": set(),
    "route": {"layers", "groups", "group_id", "onlyforward"},
    "shortcut": {"from", "activation", "weights_type", "weights_normalization"},
    "upsample": {"stride", "scale"},
    "dropout": {"probability", "dropblock", "dropblock_size_rel", "dropblock_size_abs"},
    "connected": {"output", "activation", "batch_normalize"},
    "local": {"filters", "size", "stride", "pad", "activation"},
    "reorg": {"stride", "reverse", "flatten", "extra"},
    "region": {"anchors", "classes", "coords", "num", "softmax", "tree", "sqrt", "background"}
    | _TRAIN_ONLY_HEAD_KEYS,
    "yolo": {"mask", "anchors", "classes", "num", "scale_x_y", "new_coords"} | _TRAIN_ONLY_HEAD_KEYS,
    "gaussian_yolo": {"mask", "anchors", "classes", "num", "scale_x_y"} | _TRAIN_ONLY_HEAD_KEYS,
    "softmax": {"groups", "temperature", "tree", "spatial", "noloss"},
    "cost": {"type", "scale", "ratio", "noloss"},
    "crop": {"crop_height", "crop_width", "flip", "angle", "saturation", "exposure", "shift", "noadjust"},
    "scale_channels": {"from", "scale_wh", "activation"},
    "sam": {"from", "activation"},
    "local_avgpool": {"size", "stride", "stride_x", "stride_y", "padding"},
    "reorg3d": {"stride", "reverse"},
    "batchnorm": set(),
    "detection": {"classes", "coords", "side", "num", "softmax", "sqrt", "forced", "reorg"} | _TRAIN_ONLY_HEAD_KEYS,
}
# Darknet spells some sections two ways.
ALIASES = {"conv": "convolutional", "network": "net", "max": "maxpool", "avg": "avgpool", "soft": "softmax",
           "local_avg": "local_avgpool"}
#: Layers yolokit leaves out on purpose, with the one-line reason ``info`` and the loader give.
UNSUPPORTED = {
    **dict.fromkeys(("rnn", "crnn", "gru", "lstm", "conv_lstm", "history"),
                    "recurrent layers (Darknet's text and video RNN cfgs) are not supported by yolokit"),
    "contrastive": "[contrastive] is a Darknet training-only embedding layer that yolokit does not implement",
    "deconvolutional": "[deconvolutional] is not supported by yolokit",
    "normalization": "[normalization] (AlexNet's LRN) is not supported by yolokit",
    "implicit": "[implicit] (YOLOR's learned constants) is not supported by yolokit",
}
_MUST_BE = {
    ("convolutional", "binary"): "0", ("convolutional", "xnor"): "0", ("convolutional", "dot"): "0",
    ("convolutional", "antialiasing"): "0", ("convolutional", "assisted_excitation"): "0",
    ("convolutional", "deform"): "0", ("convolutional", "sway"): "0", ("convolutional", "rotate"): "0",
    ("convolutional", "stretch"): "0", ("convolutional", "stretch_sway"): "0", ("convolutional", "flipped"): "0",
    ("convolutional", "bin_output"): "0", ("convolutional", "coordconv"): "0", ("softmax", "spatial"): "0",
    ("reorg3d", "reverse"): "0",
    ("maxpool", "maxpool_depth"): "0", ("maxpool", "antialiasing"): "0",
    ("shortcut", "weights_type"): "none", ("shortcut", "weights_normalization"): "none",
    ("dropout", "dropblock"): "0", ("reorg", "reverse"): "0", ("reorg", "flatten"): "0", ("reorg", "extra"): "0",
    ("region", "background"): "0", ("detection", "forced"): "0",
    ("detection", "reorg"): "0",
}


# ----------------------------------------------------------------------------- value rules
# Every value is parsed and range-checked when the cfg is read, so a typo (``ignore_thresh = .7.``) or a
# nonsense value (``filters=-16``) fails in ``info``/``detect``/``export`` with file:line, not only when a
# trainer finally reads it (or deep inside a layer as a traceback). Rules: ("int"|"float"|"ints"|"floats",
# low, high) with inclusive bounds (None: open), or ("str", allowed set | None). Keys without a rule are
# numbers (Darknet reads almost every key with atoi/atof) -- a comma list of them for the list-valued ones.
def _I(lo=None, hi=None):
    return ("int", lo, hi)


def _F(lo=None, hi=None):
    return ("float", lo, hi)


_POS, _BIT, _PROB = _I(1), _I(0, 1), _F(0, 1)
_STR = ("str", None)
_COMMON = {
    "activation": _STR, "policy": ("str", {"constant", "step", "steps", "exp", "poly", "sig", "random", "sgdr"}),
    "nms_kind": _STR, "iou_loss": _STR, "iou_thresh_kind": _STR, "weights_type": _STR,
    "weights_normalization": _STR, "counters_per_class": _STR, "map": _STR, "tree": _STR,
    "batch": _POS, "subdivisions": _POS, "width": _POS, "height": _POS, "channels": _POS, "inputs": _POS,
    "momentum": _F(0, 1), "decay": _F(0), "learning_rate": _F(0), "burn_in": _I(0), "max_batches": _I(0),
    "steps": ("floats", None, None), "scales": ("floats", None, None), "seq_scales": ("floats", None, None),
    "saturation": _F(0), "exposure": _F(0), "hue": _F(0, 1), "flip": _BIT, "letter_box": _BIT,
    "filters": _POS, "size": _POS, "stride": _POS, "stride_x": _POS, "stride_y": _POS, "pad": _BIT,
    "padding": _I(0), "groups": _POS, "group_id": _I(0), "batch_normalize": _BIT, "dilation": _POS,
    "layers": ("ints", None, None), "from": _I(), "scale": _F(0), "probability": _F(0, 1), "output": _POS,
    "out_channels": _POS, "anchors": ("floats", 0, None), "mask": ("ints", 0, None), "classes": _POS,
    "num": _POS, "coords": _I(4, 4), "side": _POS, "softmax": _BIT, "sqrt": _BIT, "rescore": _BIT,
    "bias_match": _BIT, "absolute": _BIT, "scale_x_y": _F(0), "jitter": _F(0, 1), "ignore_thresh": _PROB,
    "truth_thresh": _PROB, "iou_thresh": _PROB, "thresh": _PROB, "beta_nms": _PROB, "label_smooth_eps": _PROB,
    "object_scale": _F(0), "noobject_scale": _F(0), "class_scale": _F(0), "coord_scale": _F(0),
    "cls_normalizer": _F(0), "iou_normalizer": _F(0), "obj_normalizer": _F(0), "max_delta": _F(0),
    "focal_loss": _BIT, "objectness_smooth": _BIT, "random": _F(0), "resize": _F(0), "max": _I(1),
    "new_coords": _BIT, "scale_wh": _BIT, "share_index": _I(), "stopbackward": _I(0), "onlyforward": _BIT,
    "crop_height": _POS, "crop_width": _POS, "noadjust": _BIT, "temperature": _F(0), "type": _STR,
    "ema_alpha": _F(0, 1), "seen": _I(0), "mosaic": _BIT,
}


def check_value(kind: str, key: str, value: str, where: str):
    """Parse ``key=value`` of a ``[kind]`` section by its rule and check its range; returns the parsed value.
    Raises :class:`ConfigError` ``"<where>: [kind] key=value: <what was expected>"``."""
    rule = _COMMON.get(key)
    if rule is None:
        rule = ("floats", None, None) if "," in value else ("float", None, None)
    typ = rule[0]

    def fail(expected):
        return ConfigError(f"{where}: [{kind}] {key}={value}: {expected}")

    if typ == "str":
        if not value:
            raise fail("expected a value")
        if rule[1] is not None and value.lower() not in rule[1]:
            raise fail(f"expected one of {', '.join(sorted(rule[1]))}")
        return value
    lo, hi = rule[1], rule[2]
    scalar = typ in ("int", "float")
    parts = [value] if scalar else [v.strip() for v in value.split(",") if v.strip()]
    if not parts:
        raise fail("expected " + ("a number" if scalar else "comma-separated numbers"))
    cast = int if typ in ("int", "ints") else float
    noun = "an integer" if cast is int else "a number"
    out = []
    for v in parts:
        try:
            x = cast(v)
        except ValueError:
            raise fail(f"{v!r} is not {noun}") from None
        if cast is float and not math.isfinite(x):
            raise fail(f"{v!r} is not a finite number")
        if (lo is not None and x < lo) or (hi is not None and x > hi):
            rng = (f"{lo}..{hi}" if lo is not None and hi is not None else f">= {lo}" if lo is not None
                   else f"<= {hi}")
            raise fail(f"{v} is out of range (expected {rng})")
        out.append(x)
    return out[0] if scalar else out


@dataclass
class Section:
    """One ``[kind]`` block of a cfg: its options as text, and where each came from (for error messages)."""

    kind: str
    line: int
    source: str = "<cfg>"
    options: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def where(self, key: str | None = None) -> str:
        """``file:line`` of ``key`` (or of the section header)."""
        return f"{self.source}:{self.lines.get(key, self.line) if key else self.line}"

    def error(self, key: str | None, message: str) -> ConfigError:
        return ConfigError(f"{self.where(key)}: [{self.kind}] {message}")

    def has(self, key: str) -> bool:
        return key in self.options

    def get_str(self, key: str, default: str | None = None) -> str:
        if key in self.options:
            return self.options[key]
        if default is None:
            raise self.error(None, f"needs '{key}='")
        return default

    def get_int(self, key: str, default: int | None = None) -> int:
        if key not in self.options:
            if default is None:
                raise self.error(None, f"needs '{key}=' (an integer)")
            return default
        try:
            return int(self.options[key])
        except ValueError:
            raise self.error(key, f"'{key}' must be an integer, got '{self.options[key]}'") from None

    def get_float(self, key: str, default: float | None = None) -> float:
        if key not in self.options:
            if default is None:
                raise self.error(None, f"needs '{key}=' (a number)")
            return default
        try:
            return float(self.options[key])
        except ValueError:
            raise self.error(key, f"'{key}' must be a number, got '{self.options[key]}'") from None

    def get_ints(self, key: str, default: list[int] | None = None) -> list[int]:
        if key not in self.options:
            if default is None:
                raise self.error(None, f"needs '{key}=' (comma-separated integers)")
            return list(default)
        try:
            return [int(v) for v in self.options[key].split(",") if v.strip()]
        except ValueError:
            raise self.error(key, f"'{key}' must be comma-separated integers, got '{self.options[key]}'") from None

    def get_floats(self, key: str) -> list[float]:
        try:
            return [float(v) for v in self.options.get(key, "").split(",") if v.strip()]
        except ValueError:
            raise self.error(key, f"'{key}' must be comma-separated numbers, got '{self.options[key]}'") from None


def parse_cfg(text: str, source: str = "<cfg>") -> list[Section]:
    """Split cfg text into sections; check every key against :data:`KNOWN_KEYS`.

    The first section must be ``[net]``. Comments start with ``#`` or ``;``. Keys are case-insensitive
    (stored lower-case), values keep their text.
    """
    sections: list[Section] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ConfigError(f"{source}:{lineno}: malformed section header {line!r} (expected '[name]')")
            kind = line[1:-1].strip().lower()
            kind = ALIASES.get(kind, kind)
            if kind in UNSUPPORTED:
                raise ConfigError(f"{source}:{lineno}: [{kind}]: {UNSUPPORTED[kind]}")
            if kind not in KNOWN_KEYS:
                raise ConfigError(f"{source}:{lineno}: unknown layer [{kind}] (yolokit knows: "
                                  f"{', '.join(sorted(KNOWN_KEYS))})")
            if not sections and kind != "net":
                raise ConfigError(f"{source}:{lineno}: the first section must be [net], got [{kind}]")
            if sections and kind == "net":
                raise ConfigError(f"{source}:{lineno}: a second [net] section (only one is allowed)")
            sections.append(Section(kind, lineno, source))
            continue
        if "=" not in line:
            raise ConfigError(f"{source}:{lineno}: expected 'key=value' or '[section]', got {line!r}")
        if not sections:
            raise ConfigError(f"{source}:{lineno}: 'key=value' before the first section header")
        key, value = (s.strip() for s in line.split("=", 1))
        # An inline comment ends the value: Darknet reads ``layers=180 ###P6`` and ``groups=1152#960`` with
        # atoi, which stops at the '#'.
        value = value.split("#", 1)[0].strip()
        key = key.lower()
        sec = sections[-1]
        if key not in KNOWN_KEYS[sec.kind]:
            raise ConfigError(f"{source}:{lineno}: unknown key '{key}' in [{sec.kind}] (known: "
                              f"{', '.join(sorted(KNOWN_KEYS[sec.kind])) or 'none'})")
        if key in sec.options:
            # Darknet's option_find returns the FIRST match, so a key set twice keeps its first value (real
            # cfgs set [net] batch and momentum twice). In a layer, two different values are almost surely a
            # mistake that changes the network, so they are refused rather than silently resolved.
            if sec.kind != "net" and value != sec.options[key]:
                raise ConfigError(f"{source}:{lineno}: '{key}' set twice in [{sec.kind}] with different values "
                                  f"(first at line {sec.lines[key]}: {sec.options[key]}, here: {value})")
            check_value(sec.kind, key, value, f"{source}:{lineno}")
            continue
        off = _MUST_BE.get((sec.kind, key))
        if off is not None and value.lower() not in {off, "0", "none"}:
            raise ConfigError(f"{source}:{lineno}: [{sec.kind}] {key}={value} is not supported by yolokit "
                              f"(only {key}={off})")
        check_value(sec.kind, key, value, f"{source}:{lineno}")
        sec.options[key] = value
        sec.lines[key] = lineno
    if not sections:
        raise ConfigError(f"{source}: empty cfg (expected a [net] section and layers)")
    return sections


def read_cfg(path: str | Path) -> tuple[str, list[Section]]:
    """Read and parse a cfg file; returns ``(text, sections)``."""
    from yolokit.fileio import read_text

    path = Path(path)
    text = read_text(path, "cfg", 16 << 20, ConfigError)  # a regular file of at most 16 MB (not /dev/zero)
    return text, parse_cfg(text, str(path))


def read_names(path: str | Path) -> list[str]:
    """Class names from a Darknet ``.names`` file (one per line, blank lines ignored); ConfigError naming it when
    it cannot be read."""
    from yolokit.fileio import read_names_file

    try:
        return read_names_file(path)
    except (OSError, UnicodeDecodeError) as exc:  # missing, unreadable, or a binary file
        raise ConfigError(f"{path}: cannot read class names ({exc})") from None


def format_cfg(sections: list[Section]) -> str:
    """Write sections back as cfg text (comments are not kept)."""
    out = []
    for sec in sections:
        out.append(f"[{sec.kind}]")
        out += [f"{k}={v}" for k, v in sec.options.items()]
        out.append("")
    return "\n".join(out)


def set_net_size(text: str, height: int, width: int, source: str = "<cfg>") -> str:
    """The cfg with ``[net] width/height`` replaced (comments are not kept)."""
    sections = parse_cfg(text, source)
    sections[0].options["height"], sections[0].options["width"] = str(height), str(width)
    return format_cfg(sections)


# ----------------------------------------------------------------------------- training recipe
#: ``[net]`` keys that are a cfg's training recipe (optimizer, schedule, batch, augmentation), in Darknet's meaning.
RECIPE_NET_KEYS = (
    "learning_rate", "burn_in", "power", "max_batches", "policy", "steps", "scales", "step", "gamma", "momentum",
    "decay", "batch", "subdivisions", "mosaic", "mixup", "cutmix", "letter_box", "flip", "angle", "hue",
    "saturation", "exposure", "blur", "jitter", "ema_alpha", "label_smooth_eps", "adam", "b1", "b2", "eps",
)
#: ``[yolo]``/``[region]``/``[gaussian_yolo]`` keys that are loss and post-processing settings, Darknet's meaning.
RECIPE_HEAD_KEYS = (
    "iou_loss", "iou_normalizer", "cls_normalizer", "obj_normalizer", "iou_thresh", "iou_thresh_kind",
    "ignore_thresh", "truth_thresh", "label_smooth_eps", "max_delta", "nms_kind", "beta_nms", "jitter", "random",
    "resize", "scale_x_y", "new_coords", "object_scale", "noobject_scale", "class_scale", "coord_scale", "rescore",
    "focal_loss", "objectness_smooth",
)
_INT_LISTS = {"steps"}


def training_recipe(cfg) -> dict:
    """The training keys a Darknet cfg sets, typed, with where each was set: the ONE reader of a cfg's recipe.

    Args:
        cfg: a cfg path (``str``/``Path``), cfg text (a ``str`` holding a newline), or parsed sections.

    Returns a dict with only the keys the cfg actually sets (absent keys keep the caller's defaults)::

        {"net":   {"learning_rate": 0.00261, "burn_in": 1000, "policy": "steps", "steps": [400000, 450000],
                   "scales": [0.1, 0.1], "momentum": 0.949, "decay": 0.0005, "mosaic": 1, ...},
         "yolo":  {"iou_loss": "ciou", "iou_normalizer": 0.07, "nms_kind": "greedynms", "beta_nms": 0.6, ...},
         "heads": [{...}, {...}],          # the same keys per detection head, in cfg order
         "where": {"net.learning_rate": "yolov4.cfg:18", "yolo.iou_loss": "yolov4.cfg:969", ...}}

    ``yolo`` holds, for each key, the value of the first head that sets it (Darknet cfgs repeat the same training
    keys in every head; ``heads`` has them all, e.g. the per-head ``scale_x_y``). Numbers are ``int``/``float``,
    lists (``steps``, ``scales``) are lists, names (``policy``, ``iou_loss``, ``nms_kind``) lower-case strings.
    Meaning, as Darknet's: ``learning_rate`` is per image-batch of ``batch`` images, ``burn_in`` the warm-up
    iterations (lr * (i/burn_in)^power), ``max_batches`` the total iterations, ``policy=steps`` multiplies the lr
    by ``scales[k]`` at iteration ``steps[k]``; see README "Models" for the mapping to yolokit's settings.
    """
    if isinstance(cfg, (list, tuple)):
        sections = list(cfg)
    elif isinstance(cfg, str) and "\n" in cfg:
        sections = parse_cfg(cfg)
    else:
        sections = read_cfg(cfg)[1]

    def typed(sec: Section, key: str):
        value = check_value(sec.kind, key, sec.options[key], sec.where(key))
        if isinstance(value, str):
            return value.lower()
        if key in _INT_LISTS:
            return [int(v) for v in value]
        if isinstance(value, float) and value.is_integer() and key in ("burn_in", "max_batches", "batch",
                                                                       "subdivisions", "mosaic", "letter_box",
                                                                       "flip", "mixup", "cutmix", "adam",
                                                                       "new_coords", "rescore", "step"):
            return int(value)
        return value

    net, where = {}, {}
    for key in RECIPE_NET_KEYS:
        if key in sections[0].options:
            net[key] = typed(sections[0], key)
            where[f"net.{key}"] = sections[0].where(key)
    heads, merged = [], {}
    for sec in sections[1:]:
        if sec.kind not in ("yolo", "region", "gaussian_yolo", "detection"):
            continue
        head = {key: typed(sec, key) for key in RECIPE_HEAD_KEYS if key in sec.options}
        heads.append(head)
        for key, value in head.items():
            if key not in merged:
                merged[key] = value
                where[f"yolo.{key}"] = sec.where(key)
    return {"net": net, "yolo": merged, "heads": heads, "where": where}
