"""Additions to MONAI's Ignite engines for GMML pretraining and fine-tuning."""

from spcxr_monai.engines.checkpoint import (
    AtomicCheckpointSaver,
    AtomicDiskSaver,
    NonFiniteWeightsError,
    latest_checkpoint,
    save_atomic,
)
from spcxr_monai.engines.feature_probe import FeatureProbeHandler, extract_features, probe_accuracy
from spcxr_monai.engines.gmml import GMMLPrepareBatch, MaskedL1Loss, split_target
from spcxr_monai.engines.handlers import (
    ClassificationReportHandler,
    ClassProbabilityWriter,
    GradientClipHandler,
    InputGateWriter,
    ReconstructionFigureHandler,
    SegmentationOverlayWriter,
    TerminalProgressBar,
)
from spcxr_monai.engines.inferer import AutocastInferer, cpu_has_fast_bf16, resolve_amp_dtype
from spcxr_monai.engines.loss_guard import NonFiniteLossError, StopOnNonFiniteLoss
from spcxr_monai.engines.optim import param_groups_layer_decay, param_groups_weight_decay, vit_layer_id
from spcxr_monai.engines.time_budget import TimeBudget
from spcxr_monai.engines.resume import (
    CheckpointMismatchError,
    RandomStates,
    ResumeLoader,
    RunRecord,
    ValidationBest,
    data_fingerprint,
)

__all__ = [
    "AtomicCheckpointSaver",
    "AtomicDiskSaver",
    "CheckpointMismatchError",
    "NonFiniteLossError",
    "NonFiniteWeightsError",
    "RandomStates",
    "ResumeLoader",
    "RunRecord",
    "StopOnNonFiniteLoss",
    "ValidationBest",
    "data_fingerprint",
    "AutocastInferer",
    "ClassificationReportHandler",
    "ClassProbabilityWriter",
    "FeatureProbeHandler",
    "GMMLPrepareBatch",
    "GradientClipHandler",
    "InputGateWriter",
    "MaskedL1Loss",
    "ReconstructionFigureHandler",
    "SegmentationOverlayWriter",
    "TerminalProgressBar",
    "TimeBudget",
    "cpu_has_fast_bf16",
    "extract_features",
    "latest_checkpoint",
    "param_groups_layer_decay",
    "param_groups_weight_decay",
    "probe_accuracy",
    "resolve_amp_dtype",
    "save_atomic",
    "split_target",
    "vit_layer_id",
]
