"""The classification report against scikit-learn on the same predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from spcxr_monai.metrics import classification_report


def assert_matches_sklearn(report: dict, probs: np.ndarray, labels: np.ndarray, names: list[str]) -> None:
    pred = probs.argmax(1)
    present = np.unique(labels)
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(labels, pred))
    assert report["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(labels, pred))
    p, r, f, s = skm.precision_recall_fscore_support(labels, pred, labels=range(len(names)), zero_division=0)
    for c, name in enumerate(names):
        assert report["per_class"][name]["precision"] == pytest.approx(p[c])
        assert report["per_class"][name]["recall"] == pytest.approx(r[c])
        assert report["per_class"][name]["f1"] == pytest.approx(f[c])
        assert report["per_class"][name]["support"] == s[c]
    assert report["macro_f1"] == pytest.approx(skm.f1_score(labels, pred, labels=present, average="macro"))
    assert report["confusion_matrix"] == skm.confusion_matrix(labels, pred, labels=range(len(names))).tolist()
    if len(present) == len(names):
        scores = probs / probs.sum(1, keepdims=True)
        expected = (
            skm.roc_auc_score(labels, scores, multi_class="ovr", average="macro")
            if len(names) > 2
            else (skm.roc_auc_score(labels, scores[:, 1]))
        )
        if len(names) > 2:
            assert report["macro_auc"] == pytest.approx(expected)
        for c, name in enumerate(names):
            assert report["per_class"][name]["auc"] == pytest.approx(skm.roc_auc_score(labels == c, probs[:, c]))


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_report_matches_sklearn_on_random_predictions(n_classes):
    rng = np.random.RandomState(n_classes)
    labels = rng.randint(0, n_classes, 300)
    logits = rng.randn(300, n_classes) + 1.5 * np.eye(n_classes)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    names = [f"c{i}" for i in range(n_classes)]
    assert_matches_sklearn(classification_report(probs, labels, names), probs, labels, names)


def test_absent_class_has_no_auc_and_is_left_out_of_macro_scores():
    probs = np.array([[0.1, 0.7, 0.2], [0.2, 0.2, 0.6], [0.1, 0.3, 0.6], [0.3, 0.4, 0.3]])
    labels = np.array([1, 2, 2, 1])
    report = classification_report(probs, labels, ["covid", "pneumonia", "normal"])
    assert report["per_class"]["covid"]["auc"] is None
    assert report["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(labels, probs.argmax(1)))
    assert report["macro_auc"] == pytest.approx(1.0)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="probs must be"):
        classification_report(np.zeros((3, 2)), np.zeros(4, int), ["a", "b"])
