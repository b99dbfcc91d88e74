"""The GMML reconstruction figure (original / corrupted / reconstruction) of each evaluation."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from matplotlib.figure import Figure  # the object API leaves pyplot's backend alone (notebooks keep inline figures)
from monai.utils import CommonKeys

from spcxr_monai.engines.gmml import split_target

__all__ = ["ReconstructionFigureHandler"]


def _as_batch(output: Sequence[Mapping] | Mapping, key: str, n: int) -> torch.Tensor:
    """(n, C, H, W) from an engine output, decollated (list of dicts) or not (dict of batches)."""
    if isinstance(output, Mapping):
        return output[key][:n].detach().float().cpu()
    return torch.stack([item[key] for item in output[:n]]).detach().float().cpu()


class ReconstructionFigureHandler:
    """Save a figure of original / corrupted / reconstruction for the last batch of each evaluation.

    Writes ``<output_dir>/<filename>`` (default ``reconstruction_epoch<NNN>.png``) and, when given a
    ``summary_writer``, adds the figure to TensorBoard under ``tag``.

    Args:
        output_dir: folder for the PNGs.
        summary_writer: optional ``torch.utils.tensorboard.SummaryWriter``.
        num_images: rows in the figure.
        tag: TensorBoard tag.
        filename: the PNG's name, ``{epoch}`` replaced by the engine's epoch.
        title: the figure's title, formatted as ``filename`` (an evaluation names its checkpoint instead).
    """

    def __init__(
        self,
        output_dir: str,
        summary_writer: Any = None,
        num_images: int = 4,
        tag: str = "reconstruction",
        filename: str = "reconstruction_epoch{epoch:03d}.png",
        title: str = "GMML reconstruction, epoch {epoch}",
    ) -> None:
        self.output_dir = output_dir
        self.summary_writer = summary_writer
        self.num_images = num_images
        self.tag = tag
        self.filename = filename
        self.title = title
        self.last_path: str | None = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        output: Any = engine.state.output  # a MONAI engine's output: a dict, or a list of them when decollated
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
        fig.suptitle(self.title.format(epoch=epoch))
        fig.tight_layout()
        os.makedirs(self.output_dir, exist_ok=True)
        self.last_path = os.path.join(self.output_dir, self.filename.format(epoch=epoch))
        fig.savefig(self.last_path, dpi=80)
        if self.summary_writer is not None:
            self.summary_writer.add_figure(self.tag, fig, global_step=epoch)
