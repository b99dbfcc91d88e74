"""Evaluation metrics and reports."""

import warnings

from spcxr_monai.metrics.classification import classification_report, save_confusion_matrix_png
from spcxr_monai.metrics.drift import DriftResult, image_features, mmd_permutation_test, plot_drift

# MONAI >= 1.5 passes its own deprecated ``always_return_as_numpy`` to ``get_mask_edges`` inside the
# Hausdorff / surface metrics: nothing a caller can change, printed by every HD95 evaluation
warnings.filterwarnings("ignore", message=r".*get_mask_edges:always_return_as_numpy", category=FutureWarning)

__all__ = [
    "DriftResult",
    "classification_report",
    "image_features",
    "mmd_permutation_test",
    "plot_drift",
    "save_confusion_matrix_png",
]
