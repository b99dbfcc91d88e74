"""Additions to MONAI's Ignite engines for GMML pretraining and fine-tuning."""

from spcxr_monai.engines.checkpoint import latest_checkpoint
from spcxr_monai.engines.gmml import GMMLPrepareBatch, MaskedL1Loss, split_target
from spcxr_monai.engines.handlers import (
    ClassificationReportHandler,
    ClassProbabilityWriter,
    GradientClipHandler,
    ReconstructionFigureHandler,
    SegmentationOverlayWriter,
)
from spcxr_monai.engines.inferer import AutocastInferer, resolve_amp_dtype
from spcxr_monai.engines.optim import param_groups_weight_decay

__all__ = [
    "AutocastInferer",
    "ClassificationReportHandler",
    "ClassProbabilityWriter",
    "GMMLPrepareBatch",
    "GradientClipHandler",
    "MaskedL1Loss",
    "ReconstructionFigureHandler",
    "SegmentationOverlayWriter",
    "latest_checkpoint",
    "param_groups_weight_decay",
    "resolve_amp_dtype",
    "split_target",
]
