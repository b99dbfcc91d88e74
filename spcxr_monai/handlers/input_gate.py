"""The input gate's verdict on every image an inference or evaluation run saw."""

from __future__ import annotations

import json
import logging

from ignite.engine import Engine, Events

from spcxr_monai.distributed import all_gather_lists, is_main_process
from spcxr_monai.gate import InputGate
from spcxr_monai.handlers.outputs import outputs_with_files
from spcxr_monai.utils.atomic import atomic_write

__all__ = ["InputGateWriter"]

logger = logging.getLogger(__name__)


class InputGateWriter:
    """The input gate's verdict (:class:`~spcxr_monai.gate.InputGate`) on every image an inference or
    evaluation run saw, at the end of its epoch: ``engine.state.gate`` = ``{image file: {"ok", "reasons", "scores"}}``,
    written as JSON when ``output_file`` is given, and the number flagged logged. Attach it before the
    writers that report it (:class:`ClassProbabilityWriter` adds each verdict to its answer).

    Args:
        output_file: JSON file to write, or None.
        enabled: False: do nothing (a config switch).
    """

    def __init__(self, output_file: str | None = None, enabled: bool = True) -> None:
        self.output_file = output_file
        self.enabled = enabled
        self._files: list[str] = []

    def attach(self, engine: Engine) -> None:
        if not self.enabled:
            return
        engine.add_event_handler(Events.EPOCH_STARTED, lambda _: self._files.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._check)  # before a report at the same event

    def _collect(self, engine: Engine) -> None:
        self._files += [source for _, source in outputs_with_files(engine) if source]

    def _check(self, engine: Engine) -> None:
        files = all_gather_lists(self._files)  # under torchrun each rank saw its shard: rank 0 checks them all
        if not is_main_process():
            engine.state.gate = {}  # type: ignore[attr-defined]  # Ignite's State carries a run's own results
            return
        gate = InputGate().check(files) if files else {}
        engine.state.gate = gate  # type: ignore[attr-defined]  # Ignite's State carries a run's own results
        flagged = [f for f, v in gate.items() if not v["ok"]]
        logger.info(
            "input gate: %d of %d images flagged%s",
            len(flagged),
            len(files),
            "".join(f"\n  {f}: {'; '.join(gate[f]['reasons'])}" for f in flagged),
        )
        if self.output_file:
            with atomic_write(self.output_file, "w") as f:
                json.dump(gate, f, indent=2)
