"""The classification report of an evaluation run (metrics, confusion matrix, per-image predictions)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.utils import CommonKeys

from spcxr_monai.distributed import all_gather_lists, is_main_process
from spcxr_monai.handlers.outputs import outputs_with_files
from spcxr_monai.metrics.classification import classification_report, save_confusion_matrix_png
from spcxr_monai.metrics.report import Predictions, prediction_report
from spcxr_monai.utils.atomic import atomic_write

__all__ = ["ClassificationReportHandler"]


class ClassificationReportHandler:
    """Collect class probabilities and labels over an evaluation; write the report at its end.

    Expects decollated engine outputs whose ``pred`` holds class probabilities (C,) (apply
    ``Activationsd(softmax=True)`` in the evaluator's postprocessing) and ``label`` an index or a
    one-hot vector. Writes ``metrics.json``, ``confusion_matrix.json``, ``confusion_matrix.png`` and
    ``predictions.csv`` (file, label, probabilities) into ``output_dir``; the report is also kept as
    ``engine.state.classification_report``. Under ``torch.distributed`` it runs on every rank, gathers
    all ranks' outputs and writes on rank 0.

    Args:
        output_dir: where to write.
        class_names: names in label order.
        full_report: also write ``report.json`` (:func:`~spcxr_monai.metrics.prediction_report`: 95% intervals,
            calibration, the screening operating point) and its plots in ``plots/`` (an evaluation; the
            validations during training leave it out).
        calibration: the model's calibration record (:func:`~spcxr_monai.metrics.load_calibration`): its
            ``threshold`` is the screening operating point reported, its temperature goes into the report.

    The input gate's verdicts on the evaluated files come from an :class:`~spcxr_monai.handlers.InputGateWriter`
    attached before this handler: the report then gains ``gate`` (how many were flagged and why).
    """

    def __init__(
        self, output_dir: str, class_names: Sequence[str], full_report: bool = False, calibration: Mapping | None = None
    ) -> None:
        self.output_dir = output_dir
        self.class_names = list(class_names)
        self.full_report = full_report
        self.calibration = dict(calibration or {})
        self._probs: list[np.ndarray] = []
        self._labels: list[int] = []
        self._files: list[str] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._write)

    def _reset(self, engine: Engine) -> None:
        self._probs, self._labels, self._files = [], [], []

    def _collect(self, engine: Engine) -> None:
        for item, source in outputs_with_files(engine):
            label = torch.as_tensor(item[CommonKeys.LABEL]).flatten()
            self._labels.append(int(label.argmax()) if label.numel() > 1 else int(label.item()))
            self._probs.append(torch.as_tensor(item[CommonKeys.PRED]).detach().float().cpu().flatten().numpy())
            self._files.append(source)

    def _write(self, engine: Engine) -> None:
        # under torchrun each rank saw its shard of the validation set: the report covers them all
        probs, labels = all_gather_lists(self._probs), all_gather_lists(self._labels)
        files = all_gather_lists(self._files)
        report = classification_report(np.stack(probs), np.asarray(labels), self.class_names)
        if not is_main_process():
            engine.state.classification_report = report  # type: ignore[attr-defined]  # Ignite's State carries a run's own results
            return
        os.makedirs(self.output_dir, exist_ok=True)
        verdicts = getattr(engine.state, "gate", None)  # from an InputGateWriter attached before this handler
        if verdicts is not None:
            flagged = {f: v["reasons"] for f, v in verdicts.items() if not v["ok"]}
            report["gate"] = {"checked": len(verdicts), "flagged": len(flagged), "flagged_files": flagged}
        engine.state.classification_report = report  # type: ignore[attr-defined]  # Ignite's State carries a run's own results
        with atomic_write(os.path.join(self.output_dir, "metrics.json"), "w") as f:
            json.dump({k: v for k, v in report.items() if k != "confusion_matrix"}, f, indent=2)
        with atomic_write(os.path.join(self.output_dir, "confusion_matrix.json"), "w") as f:
            json.dump({"classes": self.class_names, "rows_true_columns_predicted": report["confusion_matrix"]}, f)
        save_confusion_matrix_png(report, os.path.join(self.output_dir, "confusion_matrix.png"))
        with atomic_write(os.path.join(self.output_dir, "predictions.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["image", "label", *[f"p_{c}" for c in self.class_names]])
            for file, label, prob in zip(files, labels, probs):
                writer.writerow([file, label, *[f"{p:.6f}" for p in prob]])
        if self.full_report:
            predictions = Predictions(files, np.asarray(labels), np.stack(probs), self.class_names)
            full = prediction_report(
                predictions, self.calibration.get("threshold"), os.path.join(self.output_dir, "plots")
            )
            full["calibration"]["temperature"] = self.calibration.get("temperature", 1.0)
            full["calibration"]["fitted_on"] = self.calibration.get("fitted_on")
            report["intervals"] = full["intervals"]  # engine.state.classification_report is this dict
            with atomic_write(os.path.join(self.output_dir, "report.json"), "w") as f:
                json.dump(full, f, indent=1)
