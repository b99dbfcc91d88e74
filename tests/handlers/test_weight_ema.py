"""WeightEMA: the average follows PyTorch's EMA arithmetic, the validator sees it, training goes on from the
raw weights, and its state survives a checkpoint."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events

from spcxr_monai.handlers import WeightEMA, ema_decay_with_warmup


def _step(network: torch.nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in network.parameters():
            p.fill_(value)


def _engines(network: torch.nn.Module, values: list[float], seen: list[torch.Tensor]):
    trainer = Engine(lambda engine, batch: _step(network, values[engine.state.iteration - 1]))
    validator = Engine(lambda engine, batch: seen.append(network.weight.detach().clone()))
    return trainer, validator


def test_average_follows_the_ema_arithmetic_and_the_validator_sees_it():
    network = torch.nn.Linear(3, 1)
    _step(network, 0.0)
    values, seen = [1.0, 2.0, 4.0, 8.0], []
    trainer, validator = _engines(network, values, seen)
    ema = WeightEMA(network, validator=validator, decay=0.5, warmup=False)
    ema.attach(trainer)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: validator.run([0]))
    trainer.run(range(4), max_epochs=1)

    # AveragedModel copies the first update as is, then average = d * average + (1 - d) * current
    expected = 1.0
    for v in values[1:]:
        expected = 0.5 * expected + 0.5 * v
    assert expected == pytest.approx(5.375)
    assert seen and torch.allclose(seen[0], torch.full((1, 3), expected))  # the validator saw the average
    assert torch.equal(network.weight, torch.full((1, 3), 8.0))  # training continues from the raw weights


def test_warmup_ramps_the_decay_and_bad_decays_are_refused():
    assert ema_decay_with_warmup(0.99, 0) == pytest.approx(0.1)
    assert ema_decay_with_warmup(0.99, 10_000) == 0.99
    with pytest.raises(ValueError, match="ema decay"):
        WeightEMA(torch.nn.Linear(2, 2), decay=1.0)


def test_raw_weights_come_back_when_validation_fails_and_the_state_round_trips():
    network = torch.nn.Linear(3, 1)
    _step(network, 2.0)
    ema = WeightEMA(network, decay=0.9)
    ema.update()
    _step(network, 7.0)
    ema.swap_in_average()
    assert torch.equal(network.weight, torch.full((1, 3), 2.0))
    ema.restore_raw()
    assert torch.equal(network.weight, torch.full((1, 3), 7.0))

    broken = Engine(lambda engine, batch: 1 / 0)
    ema = WeightEMA(network, validator=broken, decay=0.9)
    ema.attach(Engine(lambda engine, batch: None))
    ema.update()
    _step(network, 9.0)
    with pytest.raises(ZeroDivisionError):
        broken.run([0])
    assert torch.equal(network.weight, torch.full((1, 3), 9.0))  # raw weights restored despite the failure

    resumed = WeightEMA(torch.nn.Linear(3, 1), decay=0.9)
    resumed.load_state_dict(ema.state_dict())
    assert torch.equal(resumed.average.module.weight, ema.average.module.weight)
    assert int(resumed.average.n_averaged) == 1
