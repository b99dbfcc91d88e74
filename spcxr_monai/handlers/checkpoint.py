"""Writing checkpoints so that a crash or ``kill -9`` at any moment never loses the last good one.

MONAI's ``CheckpointSaver`` writes in place (``atomic=False``, to keep group-readable permissions), and
Ignite deletes the previous checkpoint before the next one is written; a kill in between leaves a
truncated file and nothing else. :class:`AtomicCheckpointSaver` keeps MONAI's saver (its options,
its events) and swaps in :class:`AtomicDiskSaver`: temporary file, fsync, rename, and the previous
file removed only once the new one is complete. Weights that are not finite are never written.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from ignite.handlers.checkpoint import BaseSaveHandler
from monai.handlers import CheckpointSaver

from spcxr_monai.errors import SpcxrError
from spcxr_monai.utils.atomic import TMP_PREFIX, save_atomic

__all__ = ["AtomicCheckpointSaver", "AtomicDiskSaver", "NonFiniteWeightsError", "latest_checkpoint"]

logger = logging.getLogger(__name__)


class NonFiniteWeightsError(SpcxrError, FloatingPointError):
    """A checkpoint was about to store NaN or infinite weights."""


def count_non_finite(checkpoint: Mapping) -> int:
    """Number of NaN / inf values in the floating-point tensors of ``checkpoint`` (nested dicts, lists)."""
    if isinstance(checkpoint, torch.Tensor):
        return int((~torch.isfinite(checkpoint)).sum()) if checkpoint.is_floating_point() else 0
    if isinstance(checkpoint, Mapping):
        return sum(count_non_finite(v) for v in checkpoint.values())
    if isinstance(checkpoint, (list, tuple)):
        return sum(count_non_finite(v) for v in checkpoint)
    return 0


class AtomicDiskSaver(BaseSaveHandler):
    """Ignite save handler: atomic writes, and removals held back until the next write is complete.

    Ignite's ``Checkpoint`` calls ``remove(old)`` before ``save(new)``; here the removal waits, so the
    folder always holds at least one complete checkpoint. Only rank 0 writes (as Ignite's ``DiskSaver``).

    Args:
        dirname: folder of the checkpoints (created if missing).
        filename: a fixed file name (MONAI's ``final_filename`` / ``key_metric_filename``), or None to
            use Ignite's ``<prefix>_<name>_<score>.pt``.
        check_finite: refuse (:class:`NonFiniteWeightsError`) a checkpoint whose tensors hold NaN or inf.
    """

    def __init__(self, dirname: str | os.PathLike, filename: str | None = None, check_finite: bool = True) -> None:
        self.dirname = os.fspath(dirname)
        self.filename = filename
        self.check_finite = check_finite
        self._pending_removal: list[str] = []
        os.makedirs(self.dirname, exist_ok=True)

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        filename = self.filename or filename
        if idist.get_rank() != 0:
            return
        path = os.path.join(self.dirname, filename)
        if self.check_finite:
            bad = count_non_finite(checkpoint)
            if bad:
                self._pending_removal.clear()  # the previous checkpoint is the last good one: keep it
                raise NonFiniteWeightsError(
                    f"{path}: not written, {bad} values are NaN or infinite; "
                    "the previous checkpoint in this folder is kept"
                )
        save_atomic(checkpoint, path)
        for old in self._pending_removal:
            if old != filename and os.path.exists(os.path.join(self.dirname, old)):
                os.remove(os.path.join(self.dirname, old))
        self._pending_removal.clear()

    def remove(self, filename: str) -> None:
        self._pending_removal.append(self.filename or filename)


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI's ``CheckpointSaver`` (same arguments, same events) writing through :class:`AtomicDiskSaver`.

    Also: checkpoints with non-finite weights are never written (on an exception, MONAI writes the
    final checkpoint; a diverged model is not written and the exception is re-raised), leftover
    temporary files of a killed write are cleared, and the rotation of interval checkpoints
    (``n_saved``) continues over the files already in ``save_dir``, so a resumed run deletes the
    checkpoint it resumed from once a newer one is complete.
    """

    def __init__(
        self, save_dir: str, save_dict: dict, name: str | None = None, file_prefix: str = "", **kwargs: Any
    ) -> None:
        super().__init__(save_dir, save_dict, name=name, file_prefix=file_prefix, **kwargs)
        for ckpt in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if ckpt is not None:
                ckpt.save_handler = AtomicDiskSaver(  # type: ignore[assignment]  # Ignite takes any BaseSaveHandler
                    save_dir, getattr(ckpt.save_handler, "filename", None)
                )
        if idist.get_rank() == 0:  # only rank 0 writes here
            for tmp in glob.glob(os.path.join(glob.escape(save_dir), f"{TMP_PREFIX}*")):
                os.remove(tmp)  # left by a write that was killed: never complete, never read
        self._file_prefix = file_prefix

    def attach(self, engine: Engine) -> None:
        super().attach(engine)
        if self._interval_checkpoint is not None:
            # at the first epoch start, after a resume loader (attached to STARTED) has restored the counters
            engine.add_event_handler(Events.EPOCH_STARTED, self._adopt_existing_checkpoints)

    def _adopt_existing_checkpoints(self, engine: Engine) -> None:
        """Put the interval checkpoints already in ``save_dir`` into the rotation: those before the
        current epoch (iteration) with their own number, any other (left by a run that was not
        resumed) as older than all. Beyond ``n_saved``, the oldest are deleted now, as the
        uninterrupted run would have done."""
        engine.remove_event_handler(self._adopt_existing_checkpoints, Events.EPOCH_STARTED)
        interval = self._interval_checkpoint
        if interval is None:  # attached only with interval checkpoints
            return
        score = "epoch" if self.epoch_level else "iteration"
        now = engine.state.epoch if self.epoch_level else engine.state.iteration + 1
        prefix = f"{self._file_prefix}_" if self._file_prefix else ""
        found = []
        for path in glob.glob(os.path.join(glob.escape(self.save_dir), f"{prefix}*_{score}=*.pt")):
            match = re.search(rf"_{score}=(\d+)\.pt$", path)
            if match:
                number = int(match.group(1))
                found.append(Checkpoint.Item(number if number < now else -1, os.path.basename(path)))
        found.sort(key=lambda item: item.priority)
        n_saved = interval.n_saved
        if n_saved is not None and len(found) > n_saved:
            for item in found[: len(found) - n_saved]:
                os.remove(os.path.join(self.save_dir, item.filename))
            found = found[len(found) - n_saved :]
        interval._saved = found

    def exception_raised(self, engine: Engine, e: Exception) -> None:
        try:
            super().exception_raised(engine, e)
        except NonFiniteWeightsError as refused:
            engine.logger.error(str(refused))
            raise e from None


def latest_checkpoint(ckpt_dir: str, prefix: str = "checkpoint") -> str | None:
    """The newest ``<prefix>_epoch=N.pt`` (or ``<prefix>_iteration=N.pt``) written by MONAI's
    ``CheckpointSaver`` in ``ckpt_dir``, by N; None when there is none.
    """
    best, best_n = None, -1
    for path in glob.glob(os.path.join(glob.escape(ckpt_dir), f"{prefix}_*.pt")):
        match = re.search(r"_(?:epoch|iteration)=(\d+)\.pt$", path)
        if match and int(match.group(1)) > best_n:
            best, best_n = path, int(match.group(1))
    return best
