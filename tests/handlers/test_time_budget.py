"""TimeBudget: a run fitted into --max_minutes, its schedule shortened with it, ended cleanly."""

from __future__ import annotations

import time

import pytest
import torch
from ignite.engine import Engine, Events
from monai.optimizers import WarmupCosineSchedule

from spcxr_monai.handlers import TimeBudget


def _engine(step_s: float, steps_per_epoch: int = 4) -> tuple[Engine, WarmupCosineSchedule, list]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = WarmupCosineSchedule(opt, warmup_steps=steps_per_epoch, t_total=100 * steps_per_epoch)
    lrs: list[float] = []

    def step(engine, batch):
        time.sleep(step_s)
        opt.step()
        schedule.step()
        lrs.append(schedule.get_last_lr()[0])

    return Engine(step), schedule, lrs


def _run(engine: Engine, budget_s: float, schedule, steps_per_epoch: int, validation_s: float = 0.0) -> dict:
    """Run with a stand-in validation at each epoch end (attached first, as the bundles' ValidationHandler)."""
    seen = {"validated": [], "completed": []}

    def validate(e):
        time.sleep(validation_s)
        seen["validated"].append(e.state.iteration)

    engine.add_event_handler(Events.EPOCH_COMPLETED, validate)
    TimeBudget(max_minutes=budget_s / 60, lr_scheduler=schedule).attach(engine)
    engine.add_event_handler(Events.COMPLETED, lambda e: seen["completed"].append(e.state.iteration))
    start = time.monotonic()
    engine.run(range(steps_per_epoch), max_epochs=100)
    seen["took"] = time.monotonic() - start
    return seen


def test_the_run_is_cut_to_what_fits_and_the_schedule_ends_with_it():
    engine, schedule, lrs = _engine(0.05)  # 4 iterations: 0.2 s per epoch, 0.05 s of validation
    seen = _run(engine, 1.5, schedule, 4, validation_s=0.05)
    assert seen["completed"] == [engine.state.iteration]  # ended as a finished run does (final checkpoint)
    assert seen["validated"][-1] == engine.state.iteration  # the last weights were validated
    # sleeps stretch on a loaded machine: fewer steps fit, never more (30 = the budget over the shortest step)
    assert 4 <= engine.state.iteration <= 30 and seen["took"] < 1.5 + 1.0
    assert schedule.t_total == engine.state.iteration  # the schedule ends with the run
    assert lrs[-1] < 0.05 * max(lrs)  # the cosine reached its end inside the budget


def test_a_budget_shorter_than_one_epoch_still_ends_validated():
    engine, schedule, lrs = _engine(0.01, steps_per_epoch=1000)  # an epoch would take 10 s
    seen = _run(engine, 1.0, schedule, 1000)
    assert engine.state.epoch == 1 and 5 <= engine.state.iteration < 1000 and seen["took"] < 3.0  # the epoch: 10 s
    assert seen["validated"] == [engine.state.iteration] and seen["completed"] == [engine.state.iteration]
    assert schedule.t_total == engine.state.iteration and schedule.warmup_steps < 1000
    assert lrs[-1] < 0.05 * max(lrs)


def test_a_run_that_fits_is_left_alone():
    engine, schedule, _ = _engine(0.0)
    TimeBudget(max_minutes=1.0, lr_scheduler=schedule).attach(engine)
    engine.run(range(4), max_epochs=5)
    assert engine.state.epoch == 5 and schedule.t_total == 400


def test_a_resumed_shortened_run_keeps_its_shortened_length():
    engine, schedule, _ = _engine(0.0)
    schedule.t_total = 6 * 4  # a budget cut the first run to 6 epochs; resumed with --epochs 100
    TimeBudget(max_minutes=1.0, lr_scheduler=schedule).attach(engine)
    # a checkpoint loader restores the state at STARTED, after the budget's own STARTED handler (the bundles' order)
    engine.add_event_handler(
        Events.STARTED, lambda e: (setattr(e.state, "epoch", 3), setattr(e.state, "iteration", 12))
    )
    epochs = []
    engine.add_event_handler(Events.EPOCH_STARTED, lambda e: epochs.append(e.state.epoch))
    engine.run(range(4), max_epochs=100)
    assert epochs == [4, 5, 6]


def test_a_budget_must_be_positive():
    with pytest.raises(ValueError, match="max_minutes"):
        TimeBudget(max_minutes=-1)


def test_a_resumed_run_plans_on_its_own_steps():
    engine, schedule, lrs = _engine(0.05)
    TimeBudget(max_minutes=1.0 / 60, lr_scheduler=schedule).attach(engine)
    engine.add_event_handler(
        Events.STARTED, lambda e: (setattr(e.state, "epoch", 50), setattr(e.state, "iteration", 200))
    )
    start = time.monotonic()
    engine.run(range(4), max_epochs=100)
    assert time.monotonic() - start < 3.0
    assert 201 <= engine.state.iteration <= 222 and schedule.t_total == engine.state.iteration
