"""Learning-rate schedules, stepped once per optimizer update (not per epoch), as Darknet does.

``lr(it) = base_lr * warmup(it) * decay(it)``:

* warm-up -- Darknet's ``burn_in``: ``(it / burn_in) ** power`` with ``power = 4`` for the first
  ``burn_in`` updates, so early updates on freshly initialised heads stay small;
* decay after it -- ``"step"`` (Darknet ``policy=steps``: multiply by ``scale`` at each step, given as
  fractions of the run), ``"cosine"`` (half cosine down to ``final`` x base) or ``"constant"``.
"""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "step", "constant")


class BurnInSchedule:
    """Sets ``lr`` of every param group of ``optimizer`` from its ``initial_lr``; call :meth:`step` after
    each optimizer update. ``state_dict`` / ``load_state_dict`` restore the position for ``--resume``."""

    def __init__(self, optimizer, total_steps: int, kind: str = "cosine", burn_in: int = 0,
                 power: float = 4.0, steps: tuple[float, ...] = (0.8, 0.9), scale: float = 0.1,
                 final: float = 0.01):
        if kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {kind!r}")
        self.optimizer = optimizer
        self.total_steps = max(1, int(total_steps))
        self.kind, self.burn_in, self.power = kind, int(burn_in), power
        self.steps, self.scale, self.final = tuple(steps), scale, final
        self.it = 0
        self.lr_scale = 1.0  # extra multiplier, e.g. a lower rate for the fine-tune-everything stage
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self._apply()

    def factor(self, it: int) -> float:
        """Multiplier of the base learning rate at update ``it`` (0-based)."""
        warm = min(1.0, ((it + 1) / self.burn_in) ** self.power) if self.burn_in > 0 else 1.0
        progress = min(1.0, it / self.total_steps)
        if self.kind == "cosine":
            decay = self.final + (1 - self.final) * 0.5 * (1 + math.cos(math.pi * progress))
        elif self.kind == "step":
            decay = self.scale ** sum(progress >= s for s in self.steps)
        else:
            decay = 1.0
        return warm * decay

    def peak_factor(self, start: int = 0, end: int | None = None) -> float:
        """The largest :meth:`factor` over updates ``start .. end - 1`` (default: to the end of the schedule).
        Warm-up only rises and every decay only falls, so the peak is at or before the end of burn-in."""
        end = self.total_steps if end is None else min(int(end), self.total_steps)
        if end <= start:
            return 0.0
        return max(self.factor(it) for it in range(start, min(end, max(start, self.burn_in) + 1)))

    def set_lr_scale(self, scale: float) -> None:
        """Multiply every learning rate from now on by ``scale`` (idempotent: it replaces the previous scale)."""
        self.lr_scale = float(scale)
        self._apply()

    def _apply(self) -> None:
        f = self.factor(self.it) * self.lr_scale
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * f

    def step(self) -> None:
        self.it += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"it": self.it, "lr_scale": self.lr_scale}

    def load_state_dict(self, state: dict) -> None:
        self.it = int(state["it"])
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self._apply()
