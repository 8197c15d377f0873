"""The training recipe: the schedule a run will follow, and the check that it can train."""

from __future__ import annotations

from yolokit.engine.schedule import BurnInSchedule


def schedule_warning(scheduler: BurnInSchedule, cfg, updates_per_epoch: int) -> str | None:
    """One line when the learning-rate schedule of the updates still to come cannot do its job: fewer updates
    than the burn-in (so the rate never reaches ``--lr``), or a rate that stays at a tiny fraction of ``--lr``."""
    start = scheduler.it
    remaining = scheduler.total_steps - start
    if cfg.max_updates:
        remaining = min(remaining, max(0, cfg.max_updates - start))
    peak = scheduler.peak_factor(start, start + remaining) * scheduler.lr_scale
    plan = f"{remaining} optimizer update(s) ({cfg.epochs} epoch(s) x {updates_per_epoch}"
    plan += ")" if not cfg.max_updates else f", --max-updates {cfg.max_updates})"
    if start + remaining < cfg.burn_in:
        return (f"--burn-in {cfg.burn_in} is more than this run's {plan}: the learning rate peaks at "
                f"{peak * cfg.lr:.3g} ({peak:.2g} x --lr {cfg.lr:g}). Lower --burn-in, or --nbs/--batch for more "
                f"updates per epoch.")
    if cfg.lr <= 0 or peak < 0.1:
        return (f"the learning rate stays at or below {peak * cfg.lr:.3g} ({peak:.2g} x --lr {cfg.lr:g}) for all "
                f"{plan}: training will barely change the weights.")
    return None
