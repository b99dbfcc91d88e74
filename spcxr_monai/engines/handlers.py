"""Ignite handlers MONAI lacks: gradient clipping, the GMML reconstruction figure, the classification
report, per-image class probabilities, segmentation overlays, and a progress bar for terminals only."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import ProgressBar
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys

from spcxr_monai.engines.gmml import split_target

__all__ = [
    "ClassificationReportHandler",
    "ClassProbabilityWriter",
    "GradientClipHandler",
    "ReconstructionFigureHandler",
    "SegmentationOverlayWriter",
    "TerminalProgressBar",
]


class TerminalProgressBar(ProgressBar):
    """Ignite's ``ProgressBar``, attached only when stderr is a terminal: log files and CI output get no
    bar redraws (the logging handlers report there)."""

    def attach(self, engine: Engine, *args, **kwargs) -> None:  # type: ignore[override]
        from spcxr_monai.utils import on_terminal

        if on_terminal():
            super().attach(engine, *args, **kwargs)


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
            scaler.unscale_(engine.optimizer)
        engine.state.grad_norm = float(torch.nn.utils.clip_grad_norm_(engine.network.parameters(), self.max_norm))


def _as_batch(output: Sequence[Mapping] | Mapping, key: str, n: int) -> torch.Tensor:
    """(n, C, H, W) from an engine output, decollated (list of dicts) or not (dict of batches)."""
    if isinstance(output, Mapping):
        return output[key][:n].detach().float().cpu()
    return torch.stack([item[key] for item in output[:n]]).detach().float().cpu()


class ReconstructionFigureHandler:
    """Save a figure of original / corrupted / reconstruction for the last batch of each evaluation.

    Writes ``<output_dir>/reconstruction_epoch<NNN>.png`` and, when given a ``summary_writer``, adds
    the figure to TensorBoard under ``tag``.

    Args:
        output_dir: folder for the PNGs.
        summary_writer: optional ``torch.utils.tensorboard.SummaryWriter``.
        num_images: rows in the figure.
        tag: TensorBoard tag.
    """

    def __init__(
        self, output_dir: str, summary_writer: object | None = None, num_images: int = 4, tag: str = "reconstruction"
    ) -> None:
        self.output_dir = output_dir
        self.summary_writer = summary_writer
        self.num_images = num_images
        self.tag = tag
        self.last_path: str | None = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        # the object API leaves pyplot's backend alone (a notebook keeps showing inline figures)
        from matplotlib.figure import Figure

        output = engine.state.output
        corrupted = _as_batch(output, CommonKeys.IMAGE, self.num_images)
        clean, mask = split_target(_as_batch(output, CommonKeys.LABEL, self.num_images))
        pred = _as_batch(output, CommonKeys.PRED, self.num_images)
        rows = corrupted.shape[0]
        fig = Figure(figsize=(7.5, 2.5 * rows))
        axes = fig.subplots(rows, 3, squeeze=False)
        for r in range(rows):
            lo, hi = np.percentile(clean[r, 0].numpy(), (1, 99))
            for c, (title, img) in enumerate((("original", clean), ("corrupted", corrupted), ("reconstruction", pred))):
                axes[r, c].imshow(img[r, 0].numpy(), cmap="gray", vmin=lo, vmax=hi)
                axes[r, c].set_axis_off()
                if r == 0:
                    axes[r, c].set_title(title)
            axes[r, 1].contour(mask[r, 0].numpy(), levels=[0.5], colors="yellow", linewidths=0.5)
        epoch = engine.state.epoch
        fig.suptitle(f"GMML reconstruction, epoch {epoch}")
        fig.tight_layout()
        os.makedirs(self.output_dir, exist_ok=True)
        self.last_path = os.path.join(self.output_dir, f"reconstruction_epoch{epoch:03d}.png")
        fig.savefig(self.last_path, dpi=80)
        if self.summary_writer is not None:
            self.summary_writer.add_figure(self.tag, fig, global_step=epoch)


def _outputs_with_files(engine: Engine):
    """The decollated outputs of the engine's last iteration, each with its image's source file ("" if unknown)."""
    output = engine.state.output
    for item in output if isinstance(output, Sequence) else [output]:
        meta = getattr(item.get(CommonKeys.IMAGE), "meta", {}) or {}
        yield item, str(meta.get("filename_or_obj", "") or "")


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
        gate: also run the input gate (:class:`~spcxr_monai.gate.InputGate`) on the evaluated files: the
            report gains ``gate`` (how many were flagged and why; ``gate.json`` the verdicts).
    """

    def __init__(self, output_dir: str, class_names: Sequence[str], gate: bool = False) -> None:
        self.output_dir = output_dir
        self.class_names = list(class_names)
        self.gate = gate
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
        for item, source in _outputs_with_files(engine):
            label = torch.as_tensor(item[CommonKeys.LABEL]).flatten()
            self._labels.append(int(label.argmax()) if label.numel() > 1 else int(label.item()))
            self._probs.append(torch.as_tensor(item[CommonKeys.PRED]).detach().float().cpu().flatten().numpy())
            self._files.append(source)

    def _write(self, engine: Engine) -> None:
        import csv
        import json

        from spcxr_monai.metrics import classification_report, save_confusion_matrix_png

        from spcxr_monai.distributed import all_gather_lists, is_main_process

        # under torchrun each rank saw its shard of the validation set: the report covers them all
        probs, labels = all_gather_lists(self._probs), all_gather_lists(self._labels)
        files = all_gather_lists(self._files)
        report = classification_report(np.stack(probs), np.asarray(labels), self.class_names)
        if not is_main_process():
            engine.state.classification_report = report
            return
        os.makedirs(self.output_dir, exist_ok=True)
        if self.gate:
            from spcxr_monai.gate import InputGate

            verdicts = InputGate().check([f for f in files if f])
            flagged = {f: v["reasons"] for f, v in verdicts.items() if not v["ok"]}
            report["gate"] = {"checked": len(verdicts), "flagged": len(flagged), "flagged_files": flagged}
            with open(os.path.join(self.output_dir, "gate.json"), "w") as f:
                json.dump(verdicts, f, indent=2)
        engine.state.classification_report = report
        with open(os.path.join(self.output_dir, "metrics.json"), "w") as f:
            json.dump({k: v for k, v in report.items() if k != "confusion_matrix"}, f, indent=2)
        with open(os.path.join(self.output_dir, "confusion_matrix.json"), "w") as f:
            json.dump({"classes": self.class_names, "rows_true_columns_predicted": report["confusion_matrix"]}, f)
        save_confusion_matrix_png(report, os.path.join(self.output_dir, "confusion_matrix.png"))
        with open(os.path.join(self.output_dir, "predictions.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["image", "label", *[f"p_{c}" for c in self.class_names]])
            for file, label, prob in zip(files, labels, probs):
                writer.writerow([file, label, *[f"{p:.6f}" for p in prob]])


class InputGateWriter:
    """The input gate's verdict (:class:`~spcxr_monai.gate.InputGate`) on every image an inference or
    evaluation run saw, once it completes: ``engine.state.gate`` = ``{image file: {"ok", "reasons", "scores"}}``,
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
        engine.add_event_handler(Events.COMPLETED, self._check)

    def _collect(self, engine: Engine) -> None:
        self._files += [source for _, source in _outputs_with_files(engine) if source]

    def _check(self, engine: Engine) -> None:
        import json

        from spcxr_monai.gate import InputGate

        engine.state.gate = InputGate().check(self._files) if self._files else {}
        flagged = [f for f, v in engine.state.gate.items() if not v["ok"]]
        logging.getLogger(__name__).info("input gate: %d of %d images flagged%s", len(flagged), len(self._files),
                                         "".join(f"\n  {f}: {'; '.join(engine.state.gate[f]['reasons'])}" for f in flagged))
        if self.output_file:
            os.makedirs(os.path.dirname(os.path.abspath(self.output_file)), exist_ok=True)
            with open(self.output_file, "w") as f:
                json.dump(engine.state.gate, f, indent=2)


class ClassProbabilityWriter:
    """Write ``{image file: {class: probability}}`` as JSON when an inference run completes (plus ``"gate"``:
    the input gate's verdict, when an :class:`InputGateWriter` ran before it).

    Expects decollated outputs with ``pred`` holding class probabilities (C,). The result is also
    kept as ``engine.state.class_probabilities``. (MONAI's ``ClassificationSaver`` writes a CSV of
    unnamed columns; ``spcxr predict`` answers with probabilities by class name.)

    Args:
        output_file: JSON file to write (folders are created).
        class_names: names in output order.
    """

    def __init__(self, output_file: str, class_names: Sequence[str]) -> None:
        self.output_file = output_file
        self.class_names = list(class_names)
        self._results: dict[str, dict[str, float]] = {}

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, lambda _: self._results.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._write)

    def _collect(self, engine: Engine) -> None:
        for item, source in _outputs_with_files(engine):
            probs = torch.as_tensor(item[CommonKeys.PRED]).detach().float().cpu().flatten().tolist()
            self._results[source or str(len(self._results))] = {name: round(p, 6) for name, p in zip(self.class_names, probs)}

    def _write(self, engine: Engine) -> None:
        import json

        for key, verdict in getattr(engine.state, "gate", {}).items():  # from an InputGateWriter attached before
            if key in self._results:
                self._results[key]["gate"] = verdict
        engine.state.class_probabilities = dict(self._results)
        os.makedirs(os.path.dirname(os.path.abspath(self.output_file)), exist_ok=True)
        with open(self.output_file, "w") as f:
            json.dump(self._results, f, indent=2)


class SegmentationOverlayWriter:
    """Save PNG overlays (image, ground truth outline green, prediction outline red) during an evaluation.

    Outlines by scikit-image's ``find_boundaries``, drawn over the image by MONAI's ``blend_images``;
    the PNG has the image's size and orientation.

    Expects decollated outputs with ``image`` (1, H, W), ``pred`` and ``label`` one-hot (2, H, W) or
    index maps (1, H, W).

    Args:
        output_dir: folder for ``<image stem>_overlay.png``.
        max_images: stop after this many (0: all).
    """

    def __init__(self, output_dir: str, max_images: int = 0) -> None:
        self.output_dir = output_dir
        self.max_images = max_images
        self.written: list[str] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, lambda _: self.written.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    @staticmethod
    def _foreground(x: torch.Tensor) -> np.ndarray:
        x = torch.as_tensor(x).detach().cpu()
        return (x.argmax(0) if x.shape[0] > 1 else x[0]).numpy() > 0

    @classmethod
    def overlay(cls, image: torch.Tensor, label: torch.Tensor, pred: torch.Tensor) -> np.ndarray:
        """(H, W, 3) uint8: the image in grey, the label's outline green, the prediction's red (on top)."""
        from monai.visualize import blend_images
        from skimage.segmentation import find_boundaries

        grey = torch.as_tensor(image).detach().cpu().float()[:1].numpy()
        grey = (grey - grey.min()) / max(float(grey.max() - grey.min()), 1e-8)
        # colours of the "brg" colour map: 0.5 red, 1.0 green; 0 stays transparent
        outlines = np.where(find_boundaries(cls._foreground(pred)), 0.5,
                            np.where(find_boundaries(cls._foreground(label)), 1.0, 0.0))
        rgb = blend_images(grey, outlines[None].astype(np.float32), alpha=1.0, cmap="brg", rescale_arrays=False)
        return (np.clip(np.asarray(rgb), 0, 1).transpose(1, 2, 0) * 255).round().astype(np.uint8)

    def __call__(self, engine: Engine) -> None:
        from PIL import Image

        output = engine.state.output
        os.makedirs(self.output_dir, exist_ok=True)
        for item in output if isinstance(output, Sequence) else [output]:
            if self.max_images and len(self.written) >= self.max_images:
                return
            image = item[CommonKeys.IMAGE]
            meta = getattr(image, "meta", {}) or {}
            stem = os.path.basename(str(meta.get("filename_or_obj", len(self.written)))).split(".")[0]
            path = os.path.join(self.output_dir, f"{stem}_overlay.png")
            Image.fromarray(self.overlay(image, item[CommonKeys.LABEL], item[CommonKeys.PRED])).save(path)
            self.written.append(path)
