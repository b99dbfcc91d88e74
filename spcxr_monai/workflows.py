"""Small helpers that the bundles' configs instantiate by ``_target_``, so the JSON wires components
instead of carrying Python in strings: run set-up, the learning-rate schedule, the AMP flag of MONAI's
trainer, starting and closing a training run."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence, Sized
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.data import DataLoader, Dataset
from monai.inferers import Inferer
from monai.optimizers import WarmupCosineSchedule
from monai.utils import set_determinism

from spcxr_monai.distributed import check_single_process_launch, init_distributed, is_main_process
from spcxr_monai.errors import report_errors_briefly
from spcxr_monai.metrics.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    screening_threshold,
)
from spcxr_monai.utils.atomic import atomic_write
from spcxr_monai.utils.precision import resolve_amp_dtype
from spcxr_monai.utils.threads import configure_threads

__all__ = [
    "close_run",
    "initialize_run",
    "lower_is_better",
    "needs_grad_scaler",
    "run_training",
    "warmup_cosine_schedule",
]


def initialize_run(seed: int = 0, num_threads: int | None = None, distributed: bool = False) -> None:
    """A bundle run's set-up: one-line errors, the process group (``distributed``), seeds, torch threads,
    and MONAI's own deprecation noise silenced."""
    report_errors_briefly()
    # MONAI >= 1.5 passes its own deprecated ``always_return_as_numpy`` to ``get_mask_edges`` inside the
    # Hausdorff / surface metrics: nothing a caller can change, printed by every HD95 evaluation
    warnings.filterwarnings("ignore", message=r".*get_mask_edges:always_return_as_numpy", category=FutureWarning)
    if distributed:
        init_distributed()
    else:
        check_single_process_launch()
    set_determinism(seed=seed)
    configure_threads(num_threads)


def warmup_cosine_schedule(
    optimizer: torch.optim.Optimizer, dataloader: Sized, epochs: int, warmup_epochs: int = 0, end_lr: float = 0.0
) -> WarmupCosineSchedule:
    """MONAI's ``WarmupCosineSchedule`` stepped per iteration, with its lengths given in epochs of ``dataloader``."""
    steps = len(dataloader)
    return WarmupCosineSchedule(optimizer, warmup_steps=warmup_epochs * steps, t_total=epochs * steps, end_lr=end_lr)


def needs_grad_scaler(amp: str | None, device: torch.device | str) -> bool:
    """The ``amp`` flag of MONAI's ``SupervisedTrainer``: True only for fp16, which needs a GradScaler.

    bf16 autocast runs in the inferer (:class:`AutocastInferer`) and needs no scaler."""
    return resolve_amp_dtype(amp, device) == torch.float16


def lower_is_better(current: float, best: float) -> bool:
    """``metric_cmp_fn`` of an evaluator whose key metric is a loss (MONAI's default takes higher as
    better; its initial best of -1 counts as no best yet)."""
    return best < 0 or current < best


def run_training(trainer: Engine, checkpoint_saver: Any, resume_loader: Any, sampler: Any = None) -> None:
    """Attach the checkpoint saver (rank 0 only) and the resume loader, then run.

    In a config, give ``checkpoint_saver`` before ``trainer``: the saver's ``save_dict`` builds the
    network, so a seeded run draws its initial weights before the data are cached, as it always has.

    Args:
        trainer: MONAI's ``SupervisedTrainer``.
        checkpoint_saver: attached on the main process only: one set of checkpoints for all ranks.
        resume_loader: attached on every rank, after the saver (it adopts the saver's existing files).
        sampler: a ``DistributedSampler`` whose epoch follows the trainer's (other shuffles each epoch).
    """
    if is_main_process():
        checkpoint_saver.attach(trainer)
    resume_loader.attach(trainer)
    if sampler is not None:
        sampler.set_epoch(0)
        trainer.add_event_handler(Events.EPOCH_STARTED, lambda engine: sampler.set_epoch(engine.state.epoch))
    trainer.run()


logger = logging.getLogger(__name__)


@torch.no_grad()
def _probabilities(
    network: torch.nn.Module, dataset: Dataset, inferer: Inferer, device: torch.device | str, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) softmax probabilities and (N,) labels of a labelled dataset."""
    was_training = network.training
    network.eval()
    probs, labels = [], []
    try:
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            logits = inferer(torch.as_tensor(batch["image"]).to(device), network)
            probs.append(torch.softmax(torch.as_tensor(logits).float(), 1).cpu().numpy())
            labels.append(torch.as_tensor(batch["label"]).reshape(-1).cpu().numpy())
    finally:
        network.train(was_training)
    return np.concatenate(probs), np.concatenate(labels).astype(np.int64)


def calibrate_classifier(
    network: torch.nn.Module,
    checkpoint: str,
    dataset: Dataset,
    inferer: Inferer,
    device: torch.device | str,
    classes: Sequence[str],
    output_file: str,
    target_sensitivity: float = 0.95,
    batch_size: int = 32,
) -> dict | None:
    """After training: fit a temperature (and, with a ``normal`` class, a normal-vs-abnormal threshold for
    ``target_sensitivity``) on the internal validation split with the kept model's weights; write them beside
    the model (``output_file``). Runs on the main process only (the others return None).

    Returns:
        the record: ``{"temperature", "threshold", "screening"?, "ece_before", "ece_after", "fitted_on", "n"}``.
    """
    if not is_main_process():
        return None
    state = torch.load(checkpoint, map_location=device, weights_only=True)
    state = state.get("network", state)
    module = getattr(network, "module", network)  # DistributedDataParallel holds the network as .module
    module.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    probs, labels = _probabilities(module, dataset, inferer, device, batch_size)
    temperature = fit_temperature(probs, labels)
    calibrated = apply_temperature(probs, temperature)
    record: dict[str, Any] = {
        "temperature": temperature,
        "threshold": None,
        "fitted_on": f"the internal validation split ({len(labels)} images), weights {checkpoint}",
        "n": int(len(labels)),
        "ece_before": expected_calibration_error(probs, labels)["ece"],
        "ece_after": expected_calibration_error(calibrated, labels)["ece"],
    }
    if "normal" in classes and len(classes) >= 2:
        normal = list(classes).index("normal")
        abnormal = labels != normal
        if abnormal.any():
            screening = screening_threshold(1.0 - calibrated[:, normal], abnormal, target_sensitivity)
            record["threshold"] = screening["threshold"]
            record["screening"] = {**screening, "score": "1 - p(normal), temperature-scaled"}
    with atomic_write(output_file, "w") as f:
        json.dump(record, f, indent=1)
    logger.info(
        "calibration: temperature %.3f (ECE %.4f -> %.4f on %d validation images)%s",
        temperature,
        record["ece_before"],
        record["ece_after"],
        len(labels),
        f"; screening threshold {record['threshold']:.4f} for sensitivity >= {target_sensitivity}"
        if record["threshold"] is not None
        else "",
    )
    return record


def close_run(summary_writer: Any = None) -> None:
    """Flush TensorBoard and leave the process group, if any, once every rank is done.

    Without the barrier a rank that finishes first tears its gloo connections down while rank 0 still
    writes the final checkpoint, and aborts ("terminate called without an active exception"; 2 runs in
    11 of the segmentation bundle under torchrun here, none in 8 with it)."""
    if summary_writer is not None:
        summary_writer.close()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
