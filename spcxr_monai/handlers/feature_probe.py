"""How useful the frozen encoder's features are, measured while pretraining (k-NN / linear probe).

Masked L1 says how well the network fills holes, not whether its features separate diseases; SSL
projects (DINO, iBOT, GMML) therefore track a k-NN or linear-probe accuracy of the frozen encoder on a
small labelled set every few epochs, and pick checkpoints by it. :class:`FeatureProbeHandler` does that
inside a MONAI trainer; :func:`~spcxr_monai.networks.encoder_features` and :func:`~spcxr_monai.metrics.probe_accuracy` are
usable on their own.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable

import numpy as np
import torch
from ignite.engine import Engine, Events
from torch import nn

from spcxr_monai.metrics.probe import Probe, probe_accuracy
from spcxr_monai.networks.features import encoder_features
from spcxr_monai.utils.atomic import atomic_write, save_atomic
from spcxr_monai.utils.options import choose

__all__ = ["FeatureProbeHandler"]

logger = logging.getLogger(__name__)


class FeatureProbeHandler:
    """Every ``interval`` epochs, probe the frozen encoder on a small labelled set; keep the best weights.

    The features of ``train_loader`` fit a k-NN or logistic probe that is scored on ``val_loader``;
    the accuracy goes into ``engine.state.metrics[metric_name]``, the log, TensorBoard and
    ``<output_dir>/feature_probe.json`` (the whole curve). When the accuracy is the best so far the
    network's state dict is written atomically to ``<save_dir>/<best_filename>``.

    Args:
        network: the network being pretrained (its ``.vit`` encoder is probed).
        train_loader: labelled batches the probe is fitted on (never the evaluation data of a study).
        val_loader: labelled batches the probe is scored on.
        device: where to extract features.
        amp: autocast precision for the extraction.
        probe: ``knn`` or ``logistic``.
        k: neighbours of the k-NN probe.
        interval: epochs between probes (the last epoch is always probed).
        save_dir: folder of the best checkpoint and of the curve (None: neither is written).
        best_filename: file name of the best-probe checkpoint.
        summary_writer: optional TensorBoard ``SummaryWriter``.
        metric_name: name of the metric.
        block: probe the tokens after this transformer block (1-based) instead of the final ones: masked-image
            pretraining leaves a small ViT's most separable features in its middle blocks (TinyMIM).
    """

    def __init__(
        self,
        network: nn.Module,
        train_loader: Iterable,
        val_loader: Iterable,
        device: torch.device | str = "cpu",
        amp: str | None = "auto",
        probe: str = "knn",
        k: int = 20,
        interval: int = 1,
        save_dir: str | None = None,
        best_filename: str = "model_probe.pt",
        summary_writer=None,
        metric_name: str = "probe_accuracy",
        block: int | None = None,
    ) -> None:
        choose("probe", probe, Probe)
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}.")
        self.network, self.train_loader, self.val_loader = network, train_loader, val_loader
        self.device, self.amp, self.probe, self.k, self.interval = device, amp, probe, k, interval
        self.save_dir, self.best_filename = save_dir, best_filename
        self.summary_writer, self.metric_name, self.block = summary_writer, metric_name, block
        self.best = -1.0
        self.history: list[dict] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _features(self, loader: Iterable) -> tuple[np.ndarray, np.ndarray]:
        if self.block is None:
            return encoder_features(self.network, loader, self.device, self.amp)
        feats, labels = encoder_features(self.network, loader, self.device, self.amp, blocks=[self.block])
        return feats[:, 0], labels

    def _history_path(self) -> str | None:
        return os.path.join(self.save_dir, "feature_probe.json") if self.save_dir else None

    def __call__(self, engine: Engine) -> None:
        epoch, last = engine.state.epoch, engine.state.epoch == engine.state.max_epochs
        if epoch % self.interval and not last:
            return
        history_path = self._history_path()
        if not self.history and history_path and os.path.isfile(history_path):
            with open(history_path, encoding="utf-8") as f:  # a resumed run continues the curve
                self.history = [h for h in json.load(f)["history"] if h["epoch"] < epoch]
            self.best = max((h[self.metric_name] for h in self.history), default=-1.0)
        train, val = (self._features(loader) for loader in (self.train_loader, self.val_loader))
        scores = probe_accuracy(*train, *val, probe=self.probe, k=self.k)
        value = scores["accuracy"]
        engine.state.metrics[self.metric_name] = value
        self.history.append(
            {
                "epoch": epoch,
                self.metric_name: value,
                **{f"{self.metric_name}_{k}": v for k, v in scores.items() if k != "accuracy"},
            }
        )
        improved = value > self.best
        logger.info(
            "epoch %d: %s probe accuracy %.4f (balanced %.4f)%s",
            epoch,
            self.probe,
            value,
            scores["balanced_accuracy"],
            ", new best" if improved else "",
        )
        if self.summary_writer is not None:
            self.summary_writer.add_scalar(self.metric_name, value, epoch)
        if self.save_dir:
            os.makedirs(self.save_dir, exist_ok=True)
            if improved:
                save_atomic(self.network.state_dict(), os.path.join(self.save_dir, self.best_filename))
            best = max(self.history, key=lambda h: h[self.metric_name])
            summary = {
                "probe": self.probe,
                "k": self.k,
                "block": self.block or "final",
                "best_epoch": best["epoch"],
                "history": self.history,
            }
            with atomic_write(os.path.join(self.save_dir, "feature_probe.json"), "w") as f:
                json.dump(summary, f, indent=1)
        self.best = max(self.best, value)
