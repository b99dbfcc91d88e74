"""A publishable report of a classifier's ``predictions.csv`` (``spcxr report``) and the paired comparison of
two of them on the same images (``spcxr compare``): figures with 95% intervals, calibration, curves and an
operating point."""

from __future__ import annotations

import csv
import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure  # the object API leaves pyplot's backend alone
from sklearn.metrics import auc, precision_recall_curve, roc_curve

from spcxr_monai.data.errors import CXRInputError
from spcxr_monai.metrics.calibration import expected_calibration_error, sensitivity_specificity
from spcxr_monai.metrics.classification import classification_report, save_confusion_matrix_png
from spcxr_monai.metrics.intervals import (
    N_RESAMPLES,
    classification_intervals,
    delong_paired_test,
    mcnemar_exact,
    paired_bootstrap,
    wilson_interval,
)

__all__ = ["Predictions", "compare_predictions", "prediction_report", "read_predictions"]

NORMAL = "normal"


@dataclass
class Predictions:
    """A ``predictions.csv`` of the classification evaluation: one row per image."""

    files: list[str]
    labels: np.ndarray  # (N,) true class indices
    probs: np.ndarray  # (N, C)
    classes: list[str]
    path: str = ""


def read_predictions(path: str | os.PathLike) -> Predictions:
    """Read ``image,label,p_<class>...`` rows (what ``ClassificationReportHandler`` writes); a ``.gz`` path is
    read through gzip (the studies keep their per-image predictions compressed).

    Raises:
        CXRInputError: missing file, no rows, or no ``p_`` columns.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CXRInputError(path, "predictions file not found")
    opener: Any = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = [c for c in reader.fieldnames or [] if c.startswith("p_")]
        rows = list(reader)
    if not columns or "label" not in (reader.fieldnames or []):
        raise CXRInputError(path, "not a predictions.csv: expected columns image, label, p_<class>...")
    if not rows:
        raise CXRInputError(path, "no predictions in the file")
    return Predictions(
        files=[r.get("image", "") for r in rows],
        labels=np.array([int(r["label"]) for r in rows]),
        probs=np.array([[float(r[c]) for c in columns] for r in rows]),
        classes=[c[2:] for c in columns],
        path=path,
    )


def _abnormal(pred: Predictions) -> tuple[np.ndarray, np.ndarray] | None:
    """(abnormal truth, abnormality score 1 - p(normal)), where the classes include normal and another."""
    if NORMAL not in pred.classes or len(pred.classes) < 2:
        return None
    normal = pred.classes.index(NORMAL)
    return (pred.labels != normal).astype(int), 1.0 - pred.probs[:, normal]


def prediction_report(
    pred: Predictions,
    threshold: float | None = None,
    plots_dir: str | os.PathLike | None = None,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> dict:
    """The figures of one test set with their 95% intervals, its calibration and, given a normal-vs-abnormal
    ``threshold`` (on 1 - p(normal)), the screening sensitivity and specificity with their intervals.

    Args:
        pred: the predictions (:func:`read_predictions`).
        threshold: the screening operating point, or None.
        plots_dir: where to write ``reliability.png``, ``roc.png``, ``precision_recall.png`` and
            ``confusion_matrix.png`` (None: no plots).
        n_resamples, seed: of the bootstrap.

    Returns:
        ``{"n", "classes", "metrics", "intervals", "calibration", "screening"?, "plots"?}``.
    """
    report: dict = {"n": int(len(pred.labels)), "classes": pred.classes}
    report["metrics"] = classification_report(pred.probs, pred.labels, pred.classes)
    report["intervals"] = classification_intervals(pred.probs, pred.labels, pred.classes, n_resamples, seed)
    report["calibration"] = expected_calibration_error(pred.probs, pred.labels)
    screening = _abnormal(pred)
    if threshold is not None and screening is not None:
        abnormal, scores = screening
        tp, p, tn, n = sensitivity_specificity(scores, abnormal, threshold)
        report["screening"] = {
            "threshold": threshold,
            "sensitivity": wilson_interval(tp, p).as_dict(),
            "specificity": wilson_interval(tn, n).as_dict(),
        }
    if plots_dir is not None:
        report["plots"] = _plots(pred, report, Path(plots_dir))
    return report


def _plots(pred: Predictions, report: dict, folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    # reliability diagram: accuracy against confidence per bin, the diagonal is perfect calibration
    fig = Figure(figsize=(4.2, 4.2))
    ax = fig.subplots()
    bins = report["calibration"]["bins"]
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    ax.bar(
        centres,
        [b["accuracy"] for b in bins],
        width=1 / report["calibration"]["n_bins"],
        edgecolor="k",
        alpha=0.7,
        label="accuracy",
    )
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", color="crimson", label="bins")
    ax.set(
        xlabel="confidence (highest probability)",
        ylabel="accuracy",
        xlim=(0, 1),
        ylim=(0, 1),
        title=f"Reliability, ECE {report['calibration']['ece']:.3f}",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    written["reliability"] = str(folder / "reliability.png")
    fig.savefig(written["reliability"], dpi=100)
    # ROC and precision-recall: one curve per class (one vs rest) and normal vs abnormal
    curves = [(name, (pred.labels == c).astype(int), pred.probs[:, c]) for c, name in enumerate(pred.classes)]
    screening = _abnormal(pred)
    if screening is not None and len(pred.classes) > 2:
        curves.append(("abnormal vs normal", *screening))
    for kind in ("roc", "precision_recall"):
        fig = Figure(figsize=(4.6, 4.2))
        ax = fig.subplots()
        for name, truth, scores in curves:
            if truth.min() == truth.max():
                continue
            if kind == "roc":
                x, y, _ = roc_curve(truth, scores)
                ax.plot(x, y, label=f"{name} (AUC {auc(x, y):.3f})")
            else:
                y, x, _ = precision_recall_curve(truth, scores)
                ax.plot(x, y, label=f"{name} (AP {auc(x, y):.3f})")
        if kind == "roc":
            ax.plot([0, 1], [0, 1], "k--", lw=1)
            ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC")
        else:
            ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
        ax.legend(fontsize=7)
        fig.tight_layout()
        written[kind] = str(folder / f"{kind}.png")
        fig.savefig(written[kind], dpi=100)
    written["confusion_matrix"] = str(folder / "confusion_matrix.png")
    save_confusion_matrix_png(report["metrics"], written["confusion_matrix"])
    return written


def compare_predictions(a: Predictions, b: Predictions, n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict:
    """Model a against model b on the same images, rows matched by file.

    Accuracy: the exact McNemar test; balanced accuracy, macro F1, macro AUC: a paired stratified bootstrap of
    the difference; normal vs abnormal AUC: DeLong's paired test. Every difference is a minus b.

    Raises:
        ValueError: the two files hold different image sets (the counts named), other classes, or other labels.
    """
    if a.classes != b.classes:
        raise ValueError(f"{a.path} and {b.path}: different classes ({a.classes} vs {b.classes})")
    index_b = {f: i for i, f in enumerate(b.files)}
    common = [f for f in a.files if f in index_b]
    if len(common) != len(a.files) or len(common) != len(b.files) or len(set(a.files)) != len(a.files):
        raise ValueError(
            f"{a.path} ({len(a.files)} images) and {b.path} ({len(b.files)} images) are not the same image set: "
            f"{len(common)} in both; a paired comparison needs the same images"
        )
    order = np.array([index_b[f] for f in a.files])
    probs_b, labels_b = b.probs[order], b.labels[order]
    if not np.array_equal(a.labels, labels_b):
        raise ValueError(f"{a.path} and {b.path}: the same images carry different labels")
    labels = a.labels
    out: dict = {"n": int(len(labels)), "a": a.path, "b": b.path, "classes": a.classes}
    out["mcnemar"] = mcnemar_exact(a.probs.argmax(1) == labels, probs_b.argmax(1) == labels)
    out["paired_bootstrap"] = paired_bootstrap(a.probs, probs_b, labels, n_resamples, seed)
    screening = _abnormal(a)
    if screening is not None and len(a.classes) > 2 and 0 < screening[0].sum() < len(labels):
        normal = a.classes.index(NORMAL)
        out["normal_vs_abnormal_auc"] = delong_paired_test(screening[0], screening[1], 1.0 - probs_b[:, normal])
    return out
