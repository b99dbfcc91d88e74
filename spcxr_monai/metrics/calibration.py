"""Do the probabilities mean what they say? Expected calibration error, temperature scaling, and the
normal-vs-abnormal threshold of a screening operating point."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

__all__ = [
    "CALIBRATION_FILE",
    "apply_temperature",
    "load_calibration",
    "expected_calibration_error",
    "fit_temperature",
    "screening_threshold",
    "screening_verdict",
    "sensitivity_specificity",
]

EPS = 1e-12
CALIBRATION_FILE = "calibration.json"  # beside the model it belongs to

logger = logging.getLogger(__name__)


def load_calibration(model_file: str | os.PathLike) -> dict:
    """The calibration record beside a trained model (``calibration.json`` in its folder: ``{"temperature",
    "threshold", "screening"?, ...}``, written after its training); a model trained before calibration existed
    gets temperature 1 and no threshold, logged.

    Raises:
        ValueError: the file exists but is not a calibration record.
    """
    path = os.path.join(os.path.dirname(os.path.abspath(os.fspath(model_file))), CALIBRATION_FILE)
    if not os.path.isfile(path):
        logger.warning(
            "%s not found: probabilities are not temperature-scaled and no screening threshold is set "
            "(train the bundle again to fit them)",
            path,
        )
        return {"temperature": 1.0, "threshold": None, "fitted": False}
    with open(path, encoding="utf-8") as f:
        record = json.load(f)
    if not isinstance(record, dict) or not isinstance(record.get("temperature"), (int, float)):
        raise ValueError(f"{path}: not a calibration record (no numeric 'temperature')")
    return {"threshold": None, **record, "fitted": True}


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> dict:
    """Top-label expected calibration error (Guo et al. 2017): images binned by their highest probability
    (equal-width bins on [0, 1]); the mean |accuracy - confidence| of the bins weighted by their counts.

    Args:
        probs: (N, C) class probabilities.
        labels: (N,) true class indices.
        n_bins: bins of the confidence.

    Returns:
        ``{"ece", "n_bins", "bins": [{"low", "high", "count", "confidence", "accuracy"}]}`` (empty bins left out).
    """
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    confidence, predicted = probs.max(1), probs.argmax(1)
    correct = predicted == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        inside = which == b
        if not inside.any():
            continue
        conf, acc = float(confidence[inside].mean()), float(correct[inside].mean())
        ece += inside.mean() * abs(acc - conf)
        bins.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": int(inside.sum()),
                "confidence": conf,
                "accuracy": acc,
            }
        )
    return {"ece": float(ece), "n_bins": n_bins, "bins": bins}


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(probs) / T)``: the probabilities of logits divided by ``T`` (log-probabilities are the
    logits up to a constant per image, which softmax ignores)."""
    return softmax(np.log(np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0)) / temperature, axis=1)


def fit_temperature(probs: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature that minimises the negative log-likelihood of ``labels`` (Guo et al. 2017), fitted on a
    validation split never used for testing. One scalar: the predicted class never changes.

    Raises:
        ValueError: no images.
    """
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        raise ValueError("fitting a temperature needs at least one image")
    logp = np.log(np.clip(probs, EPS, 1.0))

    def nll(temperature: float) -> float:
        return -float(log_softmax(logp / temperature, axis=1)[np.arange(len(labels)), labels].mean())

    return float(minimize_scalar(nll, bounds=bounds, method="bounded").x)


def sensitivity_specificity(scores: np.ndarray, abnormal: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    """``(true positives, positives, true negatives, negatives)`` of "abnormal when score >= threshold"."""
    scores, abnormal = np.asarray(scores), np.asarray(abnormal).astype(bool)
    called = scores >= threshold
    return int((called & abnormal).sum()), int(abnormal.sum()), int((~called & ~abnormal).sum()), int((~abnormal).sum())


def screening_threshold(scores: np.ndarray, abnormal: np.ndarray, target_sensitivity: float = 0.95) -> dict:
    """The highest threshold on the abnormality score whose sensitivity reaches ``target_sensitivity`` on these
    images (a validation split): as specific as the target allows.

    Args:
        scores: (N,) abnormality scores (e.g. 1 - p(normal)).
        abnormal: (N,) 1 for abnormal images.
        target_sensitivity: in (0, 1].

    Returns:
        ``{"threshold", "target_sensitivity", "sensitivity", "specificity", "n_abnormal", "n_normal"}``.

    Raises:
        ValueError: no abnormal image, or a target outside (0, 1].
    """
    if not 0 < target_sensitivity <= 1:
        raise ValueError(f"target_sensitivity must be in (0, 1], got {target_sensitivity}")
    scores, abnormal = np.asarray(scores, dtype=np.float64), np.asarray(abnormal).astype(bool)
    positives = np.sort(scores[abnormal])[::-1]
    if len(positives) == 0:
        raise ValueError("a screening threshold needs abnormal images")
    # calling the k highest-scoring abnormal images abnormal reaches sensitivity k / P
    k = int(np.ceil(target_sensitivity * len(positives) - 1e-9))
    threshold = float(positives[k - 1])
    tp, p, tn, n = sensitivity_specificity(scores, abnormal, threshold)
    return {
        "threshold": threshold,
        "target_sensitivity": target_sensitivity,
        "sensitivity": tp / p,
        "specificity": tn / n if n else float("nan"),
        "n_abnormal": p,
        "n_normal": n,
    }


def screening_verdict(probabilities: Mapping[str, float], calibration: Mapping) -> dict | None:
    """The normal-vs-abnormal verdict of one answer at a model's calibrated threshold, with its provenance.

    Args:
        probabilities: ``{class name: calibrated probability}``.
        calibration: the model's record (:func:`load_calibration`).

    Returns:
        ``{"verdict", "abnormal_score", "threshold", "target_sensitivity", "temperature", "fitted_on"}``, or None
        without a threshold or a ``normal`` class.
    """
    threshold = calibration.get("threshold")
    if threshold is None or "normal" not in probabilities:
        return None
    score = 1.0 - float(probabilities["normal"])
    return {
        "verdict": "abnormal" if score >= threshold else "normal",
        "abnormal_score": round(score, 6),
        "threshold": threshold,
        "target_sensitivity": calibration.get("screening", {}).get("target_sensitivity"),
        "temperature": calibration.get("temperature"),
        "fitted_on": calibration.get("fitted_on"),
    }
