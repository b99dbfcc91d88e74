"""An exponential moving average (EMA) of the weights during training, validated and kept in their place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from ignite.engine import Engine, Events
from torch.optim.swa_utils import AveragedModel

__all__ = ["WeightEMA", "ema_decay_with_warmup"]


def ema_decay_with_warmup(decay: float, num_averaged: int) -> float:
    """The decay of the ``num_averaged``-th update: ``min(decay, (1 + n) / (10 + n))`` (timm's ``ModelEmaV3``
    warm-up), so the first updates follow the network instead of holding its initial weights."""
    return min(decay, (1.0 + num_averaged) / (10.0 + num_averaged))


class WeightEMA:
    """Keep an EMA of a network's weights (and buffers), and validate and save it instead of the raw weights.

    A fine-tune on a few hundred images moves the weights in noisy steps; the average of the last few dozen
    steps often generalises better (EVA-X and medical_mae fine-tune with one). The average is PyTorch's
    ``AveragedModel`` (``use_buffers``: norm statistics averaged too), updated after every optimiser step.
    When the validator starts, the network's raw weights are set aside and the average loaded in their
    place; the validator's metrics and its best-model saver therefore see the average; when it completes
    (or fails), the raw weights come back and training goes on from them. ``state_dict`` holds the average
    for resuming (list this object in the checkpoint's ``save_dict``).

    Args:
        network: the trained network (a ``DistributedDataParallel`` is unwrapped).
        validator: the evaluator that validates during training (``ValidationHandler``'s); None: only average.
        decay: EMA decay per optimiser step; about ``1 / (1 - decay)`` steps are averaged (0.99: the last
            ~100 steps, for a fine-tune of a few hundred).
        warmup: ramp the decay up over the first steps (:func:`ema_decay_with_warmup`).

    Raises:
        ValueError: a decay outside [0, 1).
    """

    def __init__(
        self, network: torch.nn.Module, validator: Engine | None = None, decay: float = 0.99, warmup: bool = True
    ) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema decay must be in [0, 1), got {decay}")
        self.network: torch.nn.Module = getattr(network, "module", network)
        self.validator = validator
        self.decay = decay
        self.warmup = warmup
        self.average = AveragedModel(self.network, avg_fn=self._average, use_buffers=True)
        self._raw: dict[str, torch.Tensor] | None = None

    def _average(self, averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor | int) -> torch.Tensor:
        n = int(num_averaged)
        decay = ema_decay_with_warmup(self.decay, n) if self.warmup else self.decay
        return decay * averaged + (1.0 - decay) * current

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.update)
        if self.validator is not None:
            self.validator.add_event_handler(Events.STARTED, self.swap_in_average)
            self.validator.add_event_handler(Events.COMPLETED, self.restore_raw)
            self.validator.add_event_handler(Events.EXCEPTION_RAISED, self._restore_and_raise)

    def update(self, _engine: Engine | None = None) -> None:
        """Fold the network's current weights into the average (after an optimiser step)."""
        self.average.update_parameters(self.network)

    @torch.no_grad()
    def swap_in_average(self, _engine: Engine | None = None) -> None:
        """Set the raw weights aside and load the average into the network."""
        if self._raw is None:
            self._raw = {k: v.detach().clone() for k, v in self.network.state_dict().items()}
        self.network.load_state_dict(self.average.module.state_dict())

    @torch.no_grad()
    def restore_raw(self, _engine: Engine | None = None) -> None:
        """Put the raw weights back (training continues from them)."""
        if self._raw is not None:
            self.network.load_state_dict(self._raw)
            self._raw = None

    def _restore_and_raise(self, _engine: Engine, error: BaseException) -> None:
        self.restore_raw()
        raise error

    def state_dict(self) -> dict[str, Any]:
        return {"average": self.average.state_dict(), "decay": self.decay}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.average.load_state_dict(state["average"])
