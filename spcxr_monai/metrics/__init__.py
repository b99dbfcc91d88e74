"""Evaluation metrics and reports: classification report, frozen-feature probes, the drift test."""

from spcxr_monai.metrics.calibration import (
    CALIBRATION_FILE,
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    load_calibration,
    screening_threshold,
    screening_verdict,
    sensitivity_specificity,
)
from spcxr_monai.metrics.classification import classification_report, save_confusion_matrix_png
from spcxr_monai.metrics.drift import DriftResult, drift_report, mmd_permutation_test, plot_drift
from spcxr_monai.metrics.intervals import (
    Interval,
    auc_interval,
    classification_intervals,
    delong_auc,
    delong_paired_test,
    mcnemar_exact,
    paired_bootstrap,
    segmentation_intervals,
    wilson_interval,
)
from spcxr_monai.metrics.probe import Probe, probe_accuracy
from spcxr_monai.metrics.report import Predictions, compare_predictions, prediction_report, read_predictions

__all__ = [
    "DriftResult",
    "Interval",
    "Predictions",
    "CALIBRATION_FILE",
    "apply_temperature",
    "load_calibration",
    "auc_interval",
    "classification_intervals",
    "compare_predictions",
    "delong_auc",
    "delong_paired_test",
    "expected_calibration_error",
    "fit_temperature",
    "mcnemar_exact",
    "paired_bootstrap",
    "prediction_report",
    "read_predictions",
    "screening_threshold",
    "screening_verdict",
    "segmentation_intervals",
    "sensitivity_specificity",
    "wilson_interval",
    "Probe",
    "classification_report",
    "drift_report",
    "mmd_permutation_test",
    "plot_drift",
    "probe_accuracy",
    "save_confusion_matrix_png",
]
