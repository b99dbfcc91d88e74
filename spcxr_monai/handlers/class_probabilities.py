"""Per-image class probabilities of an inference run, by class name, as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.utils import CommonKeys

from spcxr_monai.handlers.outputs import outputs_with_files
from spcxr_monai.metrics.calibration import screening_verdict
from spcxr_monai.utils.atomic import atomic_write

__all__ = ["ClassProbabilityWriter"]


class ClassProbabilityWriter:
    """Write ``{image file: {class: probability}}`` as JSON when an inference run completes (plus ``"gate"``:
    the input gate's verdict, when an :class:`InputGateWriter` ran before it, and ``"screening"``: the
    normal-vs-abnormal verdict at the model's calibrated threshold, with where that threshold came from).

    Expects decollated outputs with ``pred`` holding class probabilities (C,). The result is also
    kept as ``engine.state.class_probabilities``. (MONAI's ``ClassificationSaver`` writes a CSV of
    unnamed columns; ``spcxr predict`` answers with probabilities by class name.)

    Args:
        output_file: JSON file to write (folders are created).
        class_names: names in output order.
        calibration: the model's calibration record (:func:`~spcxr_monai.metrics.load_calibration`); with a
            ``threshold`` and a ``normal`` class, each answer gets ``{"verdict", "abnormal_score", "threshold",
            "target_sensitivity", "temperature", "fitted_on"}``.
    """

    def __init__(self, output_file: str, class_names: Sequence[str], calibration: Mapping | None = None) -> None:
        self.output_file = output_file
        self.class_names = list(class_names)
        self.calibration = dict(calibration or {})
        self._results: dict[str, dict[str, Any]] = {}

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, lambda _: self._results.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._write)

    def _collect(self, engine: Engine) -> None:
        for item, source in outputs_with_files(engine):
            probs = torch.as_tensor(item[CommonKeys.PRED]).detach().float().cpu().flatten().tolist()
            answer: dict[str, Any] = {name: round(p, 6) for name, p in zip(self.class_names, probs)}
            screening = screening_verdict(dict(zip(self.class_names, probs)), self.calibration)
            if screening:
                answer["screening"] = screening
            self._results[source or str(len(self._results))] = answer

    def _write(self, engine: Engine) -> None:
        for key, verdict in getattr(engine.state, "gate", {}).items():  # from an InputGateWriter attached before
            if key in self._results:
                self._results[key]["gate"] = verdict
        engine.state.class_probabilities = dict(self._results)  # type: ignore[attr-defined]  # Ignite's State carries a run's own results
        with atomic_write(self.output_file, "w") as f:
            json.dump(self._results, f, indent=2)
