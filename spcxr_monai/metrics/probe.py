"""How well frozen features separate the classes: a k-NN or logistic-regression probe."""

from __future__ import annotations

from enum import Enum

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from spcxr_monai.utils.options import choose

__all__ = ["Probe", "probe_accuracy"]


class Probe(str, Enum):
    """The probes :func:`probe_accuracy` fits."""

    KNN = "knn"
    LOGISTIC = "logistic"


def probe_accuracy(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    probe: str = Probe.KNN,
    k: int = 20,
    seed: int = 0,
) -> dict[str, float]:
    """Accuracy of a k-NN (cosine, distance-weighted) or logistic-regression probe on frozen features.

    Args:
        train_features, train_labels: (N, D) and (N,) the probe is fitted on.
        test_features, test_labels: (M, D) and (M,) it is scored on.
        probe: ``knn`` or ``logistic`` (:class:`Probe`).
        k: neighbours of the k-NN probe.
        seed: the logistic regression's seed.

    Returns:
        ``{"accuracy": ..., "balanced_accuracy": ...}`` on the test features.
    """
    kind = choose("probe", probe, Probe)
    if kind == Probe.KNN:
        model = KNeighborsClassifier(n_neighbors=min(k, len(train_labels)), metric="cosine", weights="distance")
    else:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5, random_state=seed))
    predicted = model.fit(train_features, train_labels).predict(test_features)
    return {
        "accuracy": float(np.mean(predicted == test_labels)),
        "balanced_accuracy": float(balanced_accuracy_score(test_labels, predicted)),
    }
