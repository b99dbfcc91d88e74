"""Ignite handlers MONAI lacks, one concern per module (as ``monai.handlers``): atomic checkpoints and
resume, the time budget, the non-finite loss guard, gradient clipping, the feature probe, figures, reports
and writers, an EMA of the weights, and a progress bar for terminals only."""

from spcxr_monai.handlers.checkpoint import (
    AtomicCheckpointSaver,
    AtomicDiskSaver,
    NonFiniteWeightsError,
    latest_checkpoint,
)
from spcxr_monai.handlers.class_probabilities import ClassProbabilityWriter
from spcxr_monai.handlers.classification_report import ClassificationReportHandler
from spcxr_monai.handlers.feature_probe import FeatureProbeHandler
from spcxr_monai.handlers.gradient_clip import GradientClipHandler
from spcxr_monai.handlers.input_gate import InputGateWriter
from spcxr_monai.handlers.loss_guard import NonFiniteLossError, StopOnNonFiniteLoss
from spcxr_monai.handlers.progress import TerminalProgressBar
from spcxr_monai.handlers.reconstruction_figure import ReconstructionFigureHandler
from spcxr_monai.handlers.resume import (
    CheckpointMismatchError,
    RandomStates,
    ResumeLoader,
    RunRecord,
    ValidationBest,
    data_fingerprint,
)
from spcxr_monai.handlers.segmentation_overlay import SegmentationOverlayWriter
from spcxr_monai.handlers.spaced_distance import SpacedHausdorffDistance, pixel_spacing_of
from spcxr_monai.handlers.time_budget import TimeBudget
from spcxr_monai.handlers.weight_ema import WeightEMA, ema_decay_with_warmup

__all__ = [
    "AtomicCheckpointSaver",
    "AtomicDiskSaver",
    "CheckpointMismatchError",
    "ClassProbabilityWriter",
    "ClassificationReportHandler",
    "FeatureProbeHandler",
    "GradientClipHandler",
    "InputGateWriter",
    "NonFiniteLossError",
    "NonFiniteWeightsError",
    "RandomStates",
    "ReconstructionFigureHandler",
    "ResumeLoader",
    "RunRecord",
    "SegmentationOverlayWriter",
    "SpacedHausdorffDistance",
    "StopOnNonFiniteLoss",
    "TerminalProgressBar",
    "TimeBudget",
    "ValidationBest",
    "WeightEMA",
    "data_fingerprint",
    "ema_decay_with_warmup",
    "pixel_spacing_of",
    "latest_checkpoint",
]
