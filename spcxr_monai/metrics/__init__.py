"""Evaluation metrics and reports: classification report, frozen-feature probes, the drift test."""

from spcxr_monai.metrics.classification import classification_report, save_confusion_matrix_png
from spcxr_monai.metrics.drift import DriftResult, drift_report, mmd_permutation_test, plot_drift
from spcxr_monai.metrics.probe import Probe, probe_accuracy

__all__ = [
    "DriftResult",
    "Probe",
    "classification_report",
    "drift_report",
    "mmd_permutation_test",
    "plot_drift",
    "probe_accuracy",
    "save_confusion_matrix_png",
]
