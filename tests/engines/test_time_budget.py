"""TimeBudget: a run fitted into --max_minutes, its schedule shortened with it, ended cleanly."""

from __future__ import annotations

import time

import pytest
import torch
from ignite.engine import Engine, Events
from monai.optimizers import WarmupCosineSchedule

from spcxr_monai.engines import TimeBudget


def _engine(step_s: float) -> tuple[Engine, WarmupCosineSchedule, list]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = WarmupCosineSchedule(opt, warmup_steps=4, t_total=100 * 4)
    lrs: list[float] = []

    def step(engine, batch):
        time.sleep(step_s)
        opt.step()
        schedule.step()
        lrs.append(schedule.get_last_lr()[0])

    return Engine(step), schedule, lrs


def test_the_run_is_cut_to_the_epochs_that_fit_and_the_schedule_ends_with_it():
    engine, schedule, lrs = _engine(0.05)  # 4 iterations: 0.2 s per epoch
    TimeBudget(max_minutes=1.5 / 60, lr_scheduler=schedule).attach(engine)
    completed = []
    engine.add_event_handler(Events.COMPLETED, lambda e: completed.append(e.state.epoch))
    start = time.monotonic()
    engine.run(range(4), max_epochs=100)
    took = time.monotonic() - start
    assert completed == [engine.state.epoch]  # ended as a finished run does (final checkpoints hang on this)
    assert 4 <= engine.state.epoch <= 8 and took < 2.0
    assert engine.state.max_epochs == engine.state.epoch  # no epoch cut short
    assert schedule.t_total == engine.state.epoch * 4
    assert lrs[-1] < 0.05 * max(lrs)  # the cosine reached its end inside the budget


def test_a_run_that_fits_is_left_alone():
    engine, schedule, _ = _engine(0.0)
    TimeBudget(max_minutes=1.0, lr_scheduler=schedule).attach(engine)
    engine.run(range(4), max_epochs=5)
    assert engine.state.epoch == 5 and schedule.t_total == 400


def test_a_resumed_shortened_run_keeps_its_shortened_length():
    engine, schedule, _ = _engine(0.0)
    schedule.t_total = 6 * 4  # a budget cut the first run to 6 epochs; resumed with --epochs 100
    engine.add_event_handler(Events.STARTED, lambda e: setattr(e.state, "epoch", 3))  # as a checkpoint loader does
    TimeBudget(max_minutes=1.0, lr_scheduler=schedule).attach(engine)
    epochs = []
    engine.add_event_handler(Events.EPOCH_STARTED, lambda e: epochs.append(e.state.epoch))
    engine.run(range(4), max_epochs=100)
    assert epochs == [4, 5, 6]


def test_a_budget_must_be_positive():
    with pytest.raises(ValueError, match="max_minutes"):
        TimeBudget(max_minutes=-1)
