"""MONAI's ``HausdorffDistance`` handler with each image's own pixel spacing: distances in mm where the file
says its spacing, in pixels where it does not."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ignite.metrics.metric import reinit__is_reduced
from monai.data import MetaTensor
from monai.handlers import HausdorffDistance

__all__ = ["SpacedHausdorffDistance", "pixel_spacing_of"]


def pixel_spacing_of(mask: torch.Tensor) -> tuple[float, float] | None:
    """The (row, col) spacing in mm a loaded mask's meta carries (``LoadCXRd``'s ``spacing``), or None where
    it is unknown (PNG / JPEG, a DICOM without PixelSpacing): distances then stay in pixels."""
    spacing = mask.meta.get("spacing") if isinstance(mask, MetaTensor) else None
    if spacing is None:
        return None
    values = np.asarray(spacing, dtype=float).ravel()[-2:]
    return (float(values[0]), float(values[1])) if values.size == 2 and np.isfinite(values).all() else None


class SpacedHausdorffDistance(HausdorffDistance):
    """``monai.handlers.HausdorffDistance`` computed image by image with the reference mask's own spacing.

    MONAI's handler passes no spacing, so its distances are in pixels of whatever grid the masks are on.
    At a radiograph's own size the reference mask's file knows its spacing (DICOM PixelSpacing); this
    handler hands it to ``HausdorffDistanceMetric`` (its ``spacing`` argument) per image. The unit is mm
    for an image whose spacing is known and pixels otherwise; one evaluation set mixing the two is refused.

    Args:
        kwargs: as ``monai.handlers.HausdorffDistance``.

    ``update((y_pred, y))``: lists of (C, rows, cols) one-hot masks, ``y`` carrying its file's meta.

    Raises:
        ValueError: an evaluation mixing masks with and without a known spacing.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.unit: str | None = None

    @reinit__is_reduced
    def reset(self) -> None:
        super().reset()
        self.unit = None

    @reinit__is_reduced
    def update(self, output: Sequence) -> None:
        if len(output) != 2:
            raise ValueError(f"output must have length 2, got {len(output)}.")
        y_pred, y = output
        for pred, ref in zip(y_pred, y):
            spacing = pixel_spacing_of(ref)
            unit = "px" if spacing is None else "mm"
            if self.unit not in (None, unit):
                source = ref.meta.get("filename_or_obj") if isinstance(ref, MetaTensor) else None
                raise ValueError(
                    f"{source}: HD95 in {unit} among masks measured in {self.unit}; evaluate masks with a known "
                    "spacing and those without separately"
                )
            self.unit = unit
            self.metric_fn([pred], [ref], spacing=spacing)
