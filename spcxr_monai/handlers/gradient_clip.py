"""Gradient-norm clipping between ``backward`` and ``optimizer.step`` of a MONAI trainer."""

from __future__ import annotations

import torch
from ignite.engine import Engine
from monai.engines.utils import IterationEvents

__all__ = ["GradientClipHandler"]


class GradientClipHandler:
    """Clip the global gradient norm after ``backward`` and before ``optimizer.step`` of a MONAI trainer.

    Unscales the gradients first when the trainer uses a ``GradScaler`` (fp16 AMP), as PyTorch's
    AMP recipe requires.

    Args:
        max_norm: largest allowed L2 norm of all gradients together (GMML uses 3.0).
    """

    def __init__(self, max_norm: float = 3.0) -> None:
        self.max_norm = max_norm

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(IterationEvents.BACKWARD_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        scaler = getattr(engine, "scaler", None)
        if getattr(engine, "amp", False) and scaler is not None:
            scaler.unscale_(engine.optimizer)  # type: ignore[attr-defined]  # a MONAI trainer's optimizer
        network = engine.network  # type: ignore[attr-defined]  # a MONAI trainer's network
        engine.state.grad_norm = float(torch.nn.utils.clip_grad_norm_(network.parameters(), self.max_norm))  # type: ignore[attr-defined]  # Ignite's State carries a run's own results
