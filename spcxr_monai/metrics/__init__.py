"""Evaluation metrics and reports."""

from spcxr_monai.metrics.classification import classification_report, save_confusion_matrix_png

__all__ = ["classification_report", "save_confusion_matrix_png"]
