"""Loss weights: the ``--loss KEY=VALUE`` overrides as one typed dataclass, checked once where it is built.

Pure Python (no torch), so the CLI can validate ``--loss`` before anything heavy is imported. The losses
themselves (:mod:`yolokit.loss`) take plain keyword arguments; :meth:`LossWeights.for_heads` gives them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from yolokit.errors import ConfigError

# Keys that only one family of losses takes (the others are shared).
_ANCHOR_ONLY = ("lambda_box", "ignore_thresh", "iou_thresh")  # YoloLoss: [yolo] / [region] heads
_V1_ONLY = ("lambda_coord",)  # YoloV1Loss: [detection] heads


@dataclass(frozen=True)
class LossWeights:
    """Multipliers of the loss terms (and the anchor loss's two thresholds). ``None`` keeps the loss's own
    default: YOLOv1 ``lambda_coord`` 5 and ``lambda_noobj`` 0.5 (paper sec. 2.2), every other lambda 1, and
    ``ignore_thresh`` from each head's cfg."""

    lambda_box: float | None = None  # [yolo]/[region]: box term
    lambda_coord: float | None = None  # [detection] (YOLOv1): box term
    lambda_obj: float | None = None  # objectness of responsible predictions
    lambda_noobj: float | None = None  # objectness of the others
    lambda_cls: float | None = None  # class term
    ignore_thresh: float | None = None  # [yolo]/[region]: replaces every head's ignore_thresh
    iou_thresh: float | None = None  # [yolo]/[region]: also assign anchors whose shape IoU exceeds this

    @classmethod
    def from_dict(cls, values: dict | None) -> "LossWeights":
        """Build from ``{key: number}``; an unknown key or a value that is not a number >= 0 is a
        :class:`ConfigError` naming the key (and the known keys). NaN passes (a deliberate test input)."""
        known = [f.name for f in fields(cls)]
        out = {}
        for key, value in (values or {}).items():
            if key not in known:
                raise ConfigError(f"--loss {key}: unknown loss weight (known: {', '.join(known)})")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"--loss {key}={value!r}: expected a number") from None
            if number < 0 or math.isinf(number):
                raise ConfigError(f"--loss {key}={value}: must be a finite number >= 0")
            out[key] = number
        return cls(**out)

    def for_heads(self, kind: str) -> dict:
        """Keyword arguments for :func:`yolokit.loss.build_loss` of a model whose heads are ``kind``
        (``"detection"`` for YOLOv1, anything else for the anchor heads). A key the loss does not take is a
        :class:`ConfigError` naming it and the keys that apply."""
        given = {k: v for k, v in asdict(self).items() if v is not None}
        v1 = kind == "detection"
        foreign = _ANCHOR_ONLY if v1 else _V1_ONLY
        for key in given:
            if key in foreign:
                takes = [f.name for f in fields(self) if f.name not in foreign]
                heads = "[detection] (YOLOv1)" if v1 else "[yolo]/[region]"
                raise ConfigError(f"--loss {key}: does not apply to {heads} heads (they take: {', '.join(takes)})")
        return given
