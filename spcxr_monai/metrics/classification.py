"""Classification report (scikit-learn's metrics): accuracy, balanced accuracy, per-class precision / recall /
F1, macro one-vs-rest AUC, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

__all__ = ["classification_report", "save_confusion_matrix_png"]


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def classification_report(probs: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> dict:
    """Metrics of class probabilities against integer labels.

    Args:
        probs: (N, C) class probabilities (rows sum to 1, or any monotone scores for AUC).
        labels: (N,) integer labels in [0, C).
        class_names: C names, in label order.

    Returns:
        ``{"n", "accuracy", "balanced_accuracy", "macro_f1", "macro_auc", "per_class": {name: {precision,
        recall, f1, auc, support}}, "confusion_matrix": [[...]] (rows true, columns predicted), "classes"}``.
        Balanced accuracy and macro scores average the classes present in ``labels``; a class with no
        positive (or no negative) example has AUC None.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n_classes = len(class_names)
    if probs.ndim != 2 or probs.shape != (len(labels), n_classes):
        raise ValueError(f"probs must be (N, {n_classes}) for {len(labels)} labels, got {probs.shape}")
    pred = probs.argmax(1)
    every = list(range(n_classes))
    cm = confusion_matrix(labels, pred, labels=every) if len(labels) else np.zeros((n_classes, n_classes), int)
    precision, recall, f1, support = precision_recall_fscore_support(labels, pred, labels=every, zero_division=0)
    present = support > 0
    aucs: list[float | None] = []
    for c in every:
        positives = labels == c
        one_class = positives.all() or not positives.any()
        aucs.append(None if one_class else float(roc_auc_score(positives, probs[:, c])))
    valid_aucs = [a for a in aucs if a is not None]
    return {
        "n": int(len(labels)),
        "classes": list(class_names),
        "accuracy": float((pred == labels).mean()) if len(labels) else float("nan"),
        # mean recall over the classes present, as sklearn's balanced_accuracy_score
        "balanced_accuracy": float(recall[present].mean()) if present.any() else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "macro_auc": float(np.mean(valid_aucs)) if valid_aucs else None,
        "per_class": {
            name: {
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "auc": aucs[c],
                "support": int(support[c]),
            }
            for c, name in enumerate(class_names)
        },
        "confusion_matrix": np.asarray(cm).tolist(),
    }


def save_confusion_matrix_png(report: dict, path: str, title: str = "Confusion matrix") -> None:
    """Draw ``report["confusion_matrix"]`` (rows true, columns predicted) with counts and row shares."""
    cm = np.asarray(report["confusion_matrix"], dtype=np.float64)
    names = report["classes"]
    share = _safe_div(cm, cm.sum(1, keepdims=True))
    fig = Figure(figsize=(1.4 * len(names) + 2, 1.2 * len(names) + 1.5))
    ax = fig.subplots()
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(
                j,
                i,
                f"{int(cm[i, j])}\n{share[i, j]:.0%}",
                ha="center",
                va="center",
                color="white" if share[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(len(names)), names, rotation=30)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\naccuracy {report['accuracy']:.3f}, balanced {report['balanced_accuracy']:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
