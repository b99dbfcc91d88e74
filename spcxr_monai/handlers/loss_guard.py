"""Stop training at the first non-finite loss, before it reaches the weights."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from ignite.engine import Engine
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys

from spcxr_monai.errors import SpcxrError

__all__ = ["NonFiniteLossError", "StopOnNonFiniteLoss"]


class NonFiniteLossError(SpcxrError, FloatingPointError):
    """A training loss was NaN or infinite."""


class StopOnNonFiniteLoss:
    """Raise :class:`NonFiniteLossError` naming the batch's files when a MONAI trainer's loss is NaN or inf.

    Checked at ``LOSS_COMPLETED``, before ``backward`` and the optimiser step, so the weights stay as
    they were and the checkpoints on disk stay good. Ignite's ``TerminateOnNan`` is not used: it ends
    the run as if it had completed (the final checkpoint is written, the process exits 0).

    Args:
        output_transform: engine state output (a dict at ``LOSS_COMPLETED``) -> loss (a number or 0-d tensor).
        file_key: batch key holding the source file names (e.g. set by ``CopyItemsd(keys="image",
            names="image_file")`` before loading); without it the message gives the iteration only.
    """

    def __init__(
        self, output_transform: Callable = lambda output: output[CommonKeys.LOSS], file_key: str | None = "image_file"
    ) -> None:
        self.output_transform = output_transform
        self.file_key = file_key

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(IterationEvents.LOSS_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        loss = float(torch.as_tensor(self.output_transform(engine.state.output)).detach())
        if math.isfinite(loss):
            return
        files: Any = None
        batch = engine.state.batch
        if self.file_key and isinstance(batch, dict):
            files = batch.get(self.file_key)
        where = f"epoch {engine.state.epoch}, iteration {engine.state.iteration}"
        named = f"; the batch's files: {', '.join(map(str, files))}" if files is not None else ""
        raise NonFiniteLossError(
            f"training loss is {loss} at {where}{named}. Check those images (or lower the learning rate); "
            "the model was not updated with it and the checkpoints on disk are those of before"
        )
