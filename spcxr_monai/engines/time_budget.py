"""End a training run inside a wall-clock budget, cleanly and with its learning-rate schedule fitted to it."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from ignite.engine import Engine, Events
from ignite.handlers import TimeLimit

__all__ = ["TimeBudget"]

logger = logging.getLogger(__name__)


class TimeBudget:
    """Fit a run into ``max_minutes`` of training-loop time (from the trainer's start; data caching before
    it is not counted).

    After each epoch (its validation included: attach after MONAI's ``ValidationHandler``) the mean
    epoch time so far decides how many epochs fit in what is left; when fewer than the planned number
    fit, the run is shortened to that many (``max_epochs``) and the schedule's length (``t_total`` of
    MONAI's ``WarmupCosineSchedule``, per iteration) is cut to match, so the learning rate still decays
    to its end value by the last epoch. The run then ends as any run does: the last epoch validated,
    its checkpoint and the final weights written (``Events.COMPLETED``). Epochs are never added.
    Ignite's ``TimeLimit`` is the safety net: past the budget plus ``grace_minutes`` the trainer stops
    after the current iteration.

    Args:
        max_minutes: the budget of the training loop in minutes; None or 0: no budget (the handler does
            nothing, so a config can always list it).
        lr_scheduler: a per-iteration scheduler with ``t_total`` (e.g. ``WarmupCosineSchedule``), or None.
        grace_minutes: how far past the budget an epoch may run before ``TimeLimit`` ends it mid-epoch.
    """

    def __init__(self, max_minutes: float | None, lr_scheduler: Any = None, grace_minutes: float = 1.0) -> None:
        if max_minutes is not None and max_minutes < 0:
            raise ValueError(f"max_minutes must be >= 0 (0 or None: no budget), got {max_minutes}.")
        self.budget_s = 60.0 * float(max_minutes or 0)
        self.grace_s = 60.0 * float(grace_minutes)
        self.lr_scheduler = lr_scheduler
        self._start = 0.0
        self._first_epoch = 0

    def attach(self, engine: Engine) -> None:
        if not self.budget_s:
            return
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)

    def _started(self, engine: Engine) -> None:
        self._start = time.monotonic()
        self._first_epoch = engine.state.epoch  # > 0 when resumed
        total = getattr(self.lr_scheduler, "t_total", None)
        if total is not None and engine.state.epoch_length and total < engine.state.max_epochs * engine.state.epoch_length:
            # resumed from a run that a budget shortened: its schedule ends earlier than the configured epochs
            engine.state.max_epochs = max(engine.state.epoch, math.ceil(total / engine.state.epoch_length))
        engine.add_event_handler(Events.ITERATION_COMPLETED, TimeLimit(math.ceil(self.budget_s + self.grace_s)))
        logger.info("time budget: %.1f min of training for at most %d epochs", self.budget_s / 60,
                    engine.state.max_epochs - self._first_epoch)

    def _epoch_completed(self, engine: Engine) -> None:
        elapsed = time.monotonic() - self._start
        done = engine.state.epoch - self._first_epoch
        per_epoch = elapsed / done
        fit = engine.state.epoch + math.floor((self.budget_s - elapsed) / per_epoch)
        if fit >= engine.state.max_epochs:
            return
        planned = engine.state.max_epochs
        engine.state.max_epochs = max(engine.state.epoch, fit)
        if self.lr_scheduler is not None and hasattr(self.lr_scheduler, "t_total"):
            steps = engine.state.epoch_length
            self.lr_scheduler.t_total = max(engine.state.max_epochs * steps, self.lr_scheduler.last_epoch + 1)
        logger.info(
            "time budget: %.1f s per epoch, %.1f of %.1f min used: %d epochs instead of %d (schedule shortened)",
            per_epoch, elapsed / 60, self.budget_s / 60, engine.state.max_epochs, planned,
        )
