"""End a training run inside a wall-clock budget, cleanly and with its learning-rate schedule fitted to it."""

# mypy: disable-error-code="operator"
# (Ignite types State.max_epochs / epoch_length as Optional; both are set before any handler here runs)

from __future__ import annotations

import logging
import math
import time
from typing import Any

from ignite.engine import Engine, Events

__all__ = ["TimeBudget"]

logger = logging.getLogger(__name__)


class TimeBudget:
    """Fit a run into ``max_minutes`` of training-loop time (from the trainer's start; data caching before
    it is not counted), so that it ends as a finished run does.

    - **Plan**: once ``calibration`` of the budget has passed, the measured time per iteration says how many
      iterations fit; when fewer than planned, the run is shortened (``max_epochs``) and so is the
      schedule: ``t_total`` and ``warmup_steps`` of MONAI's ``WarmupCosineSchedule`` (per iteration) are
      scaled to the new length, so the learning rate still decays to its end value at the run's end.
      After each epoch (its validation included: attach after MONAI's ``ValidationHandler``) the plan is
      checked against the mean epoch time and shortened again if needed. It is never lengthened.
    - **End**: at the planned iteration, or when the time left is shorter than the last validation took,
      the current epoch is closed early (Ignite's ``terminate_epoch``): ``EPOCH_COMPLETED`` still fires, so
      the validation, the reconstruction figure and the epoch's checkpoint are done, and the run then ends
      with ``COMPLETED`` (final weights). A budget shorter than one epoch still gives a validated,
      checkpointed, exportable run.

    Args:
        max_minutes: the budget of the training loop in minutes; None or 0: no budget (the handler does
            nothing, so a config can always list it).
        lr_scheduler: a per-iteration scheduler with ``t_total`` (e.g. ``WarmupCosineSchedule``), or None.
        calibration: the share of the budget measured before the first plan.
    """

    def __init__(self, max_minutes: float | None, lr_scheduler: Any = None, calibration: float = 0.05) -> None:
        if max_minutes is not None and max_minutes < 0:
            raise ValueError(f"max_minutes must be >= 0 (0 or None: no budget), got {max_minutes}.")
        self.budget_s = 60.0 * float(max_minutes or 0)
        self.lr_scheduler = lr_scheduler
        self.calibration = calibration
        self._start = 0.0
        self._first_iteration = 0
        self._first_epoch = 0
        self._stop_at: int | None = None  # the planned last iteration
        self._last_iteration_end = 0.0
        self._end_s = 0.0  # the longest an epoch's end (validation, figures) took: kept free at the budget's end

    def attach(self, engine: Engine) -> None:
        if not self.budget_s:
            return
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.ITERATION_STARTED, self._first_step)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration_completed)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)

    def _started(self, engine: Engine) -> None:
        self._start = time.monotonic()

    def _first_step(self, engine: Engine) -> None:
        """Where the run starts from, read at its first step: a resumed run's state (epoch, iteration, the
        schedule) is restored by handlers of ``STARTED`` that may run after this one's."""
        engine.remove_event_handler(self._first_step, Events.ITERATION_STARTED)
        self._first_iteration, self._first_epoch = engine.state.iteration - 1, engine.state.epoch - 1
        total = getattr(self.lr_scheduler, "t_total", None)
        if total is not None and total < engine.state.max_epochs * engine.state.epoch_length:
            # resumed from a run that a budget shortened: its schedule ends before the configured epochs
            self._stop_at = total
            engine.state.max_epochs = max(engine.state.epoch, math.ceil(total / engine.state.epoch_length))
        logger.info(
            "time budget: %.2f min of training for at most %d epochs",
            self.budget_s / 60,
            engine.state.max_epochs - self._first_epoch,
        )

    def _plan(self, engine: Engine, iterations_left: int, why: str) -> None:
        """Shorten the run to end ``iterations_left`` iterations from now, the schedule with it."""
        stop = engine.state.iteration + max(1, iterations_left)
        planned = self._stop_at or engine.state.max_epochs * engine.state.epoch_length
        if stop >= planned:
            return
        total = getattr(self.lr_scheduler, "t_total", None)
        if total is not None:
            ratio = stop / total
            self.lr_scheduler.t_total = stop
            if hasattr(self.lr_scheduler, "warmup_steps"):
                self.lr_scheduler.warmup_steps = min(
                    self.lr_scheduler.warmup_steps, max(0, round(self.lr_scheduler.warmup_steps * ratio))
                )
        self._stop_at = stop
        engine.state.max_epochs = math.ceil(stop / engine.state.epoch_length)
        logger.info(
            "time budget (%s): the run ends at iteration %d (epoch %d) instead of %d; schedule shortened",
            why,
            stop,
            engine.state.max_epochs,
            planned,
        )

    def _iteration_completed(self, engine: Engine) -> None:
        self._last_iteration_end = now = time.monotonic()
        elapsed = now - self._start
        done = engine.state.iteration - self._first_iteration
        if self._stop_at is None and elapsed >= self.calibration * self.budget_s and done >= 2:
            per_iteration = elapsed / done
            self._plan(engine, math.floor((self.budget_s - elapsed) / per_iteration), "measured per iteration")
            if self._stop_at is None:
                self._stop_at = engine.state.max_epochs * engine.state.epoch_length  # it all fits
        out_of_time = elapsed + self._end_s >= self.budget_s
        if (self._stop_at is not None and engine.state.iteration >= self._stop_at) or out_of_time:
            if getattr(self.lr_scheduler, "t_total", 0) > engine.state.iteration:  # out of time before the plan:
                self.lr_scheduler.t_total = engine.state.iteration  # the checkpoint records where the run ended
            if engine.state.iteration % engine.state.epoch_length:
                logger.info(
                    "time budget: closing epoch %d early at iteration %d (%.1f of %.1f min used)",
                    engine.state.epoch,
                    engine.state.iteration,
                    elapsed / 60,
                    self.budget_s / 60,
                )
                engine.terminate_epoch()  # EPOCH_COMPLETED still fires: validation and checkpoint
            engine.state.max_epochs = engine.state.epoch

    def _epoch_completed(self, engine: Engine) -> None:
        now = time.monotonic()
        # the epoch's end handlers attached before this one (validation, figures) ran since its last iteration
        self._end_s = max(self._end_s, now - self._last_iteration_end)
        if engine.state.epoch < engine.state.max_epochs:
            elapsed = now - self._start
            per_iteration = elapsed / max(1, engine.state.iteration - self._first_iteration)  # epoch ends included
            self._plan(
                engine, math.floor((self.budget_s - elapsed - self._end_s) / per_iteration), "measured per epoch"
            )
