"""95% intervals and paired tests: they cover the truth as often as they claim, and agree with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

from spcxr_monai.metrics import (
    auc_interval,
    classification_intervals,
    delong_auc,
    delong_paired_test,
    mcnemar_exact,
    paired_bootstrap,
    segmentation_intervals,
    wilson_interval,
)


def test_accuracy_intervals_cover_the_true_accuracy_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    true_accuracy, n = 0.85, 600
    covered = 0
    for _ in range(1000):
        correct = int((rng.random(n) < true_accuracy).sum())
        ci = wilson_interval(correct, n)
        covered += ci.low <= true_accuracy <= ci.high
    assert 0.93 <= covered / 1000 <= 0.97, covered


def test_auc_intervals_cover_the_true_auc_95_percent_of_the_time():
    # binormal scores: positives N(d, 1), negatives N(0, 1): AUC = Phi(d / sqrt(2))
    rng = np.random.default_rng(1)
    d, n_pos, n_neg = 1.2, 150, 250
    true_auc = norm.cdf(d / np.sqrt(2))
    truth = np.r_[np.ones(n_pos), np.zeros(n_neg)]
    covered = 0
    for _ in range(1000):
        scores = np.r_[rng.normal(d, 1, n_pos), rng.normal(0, 1, n_neg)]
        ci = auc_interval(truth, scores)
        covered += ci.low <= true_auc <= ci.high
    assert 0.93 <= covered / 1000 <= 0.97, covered


def test_delong_auc_is_the_auc_and_its_variance_matches_the_bootstrap():
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 2, 400)
    scores = truth + rng.normal(0, 1.3, 400)
    scores[:40] = np.round(scores[:40])  # ties
    aucs, cov = delong_auc(truth, scores)
    assert aucs[0] == pytest.approx(roc_auc_score(truth, scores))
    boot = [roc_auc_score(truth[i], scores[i]) for i in rng.integers(0, 400, (1000, 400))]
    assert np.sqrt(cov[0, 0]) == pytest.approx(np.std(boot), rel=0.15)
    with pytest.raises(ValueError, match="both classes"):
        delong_auc(np.zeros(5), np.arange(5.0))


def test_classification_intervals_hold_the_point_figures_of_scikit_learn():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 500)
    probs = rng.dirichlet([1, 1, 1], 500) + 0.6 * np.eye(3)[labels]
    probs /= probs.sum(1, keepdims=True)
    out = classification_intervals(probs, labels, ["covid", "pneumonia", "normal"], n_resamples=500)
    predicted = probs.argmax(1)
    assert out["accuracy"]["estimate"] == pytest.approx(np.mean(predicted == labels))
    assert out["balanced_accuracy"]["estimate"] == pytest.approx(balanced_accuracy_score(labels, predicted))
    assert out["macro_f1"]["estimate"] == pytest.approx(f1_score(labels, predicted, average="macro"))
    assert out["macro_auc"]["estimate"] == pytest.approx(roc_auc_score(labels, probs, multi_class="ovr"))
    abnormal = (labels != 2).astype(int)
    assert out["normal_vs_abnormal_auc"]["estimate"] == pytest.approx(roc_auc_score(abnormal, 1 - probs[:, 2]))
    for name in ("accuracy", "balanced_accuracy", "macro_f1", "macro_auc", "normal_vs_abnormal_auc"):
        assert out[name]["low"] < out[name]["estimate"] < out[name]["high"], name
    recall = out["per_class"]["covid"]["recall"]
    assert recall["estimate"] == pytest.approx(np.mean(predicted[labels == 0] == 0))
    # about +-0.04 at n = 500 for an accuracy near 0.75 (1.96 * sqrt(p (1 - p) / n))
    assert 0.06 < out["accuracy"]["high"] - out["accuracy"]["low"] < 0.09


def test_segmentation_intervals_are_over_images_and_count_undefined_hd95():
    rng = np.random.default_rng(4)
    dice = rng.normal(0.93, 0.03, 400)
    hd95 = np.r_[rng.normal(5, 1, 398), np.inf, np.nan]
    out = segmentation_intervals({"dice": dice, "hd95": hd95}, n_resamples=1000)
    assert out["dice"]["estimate"] == pytest.approx(dice.mean())
    half = 1.96 * dice.std() / np.sqrt(400)
    assert out["dice"]["high"] - out["dice"]["low"] == pytest.approx(2 * half, rel=0.15)
    assert out["hd95"]["n"] == 398 and out["hd95"]["undefined"] == 2 and np.isfinite(out["hd95"]["estimate"])


def test_mcnemar_counts_the_discordant_images_and_is_exact():
    a = np.array([1] * 60 + [0] * 10 + [1] * 20 + [0] * 10, bool)
    b = np.array([1] * 60 + [1] * 10 + [0] * 20 + [0] * 10, bool)
    result = mcnemar_exact(a, b)
    assert (result["only_a_right"], result["only_b_right"]) == (20, 10)
    # two-sided binomial: 2 * P(X <= 10), X ~ Bin(30, 1/2)
    from scipy.stats import binom

    assert result["p_value"] == pytest.approx(2 * binom.cdf(10, 30, 0.5))
    assert mcnemar_exact(a, a)["p_value"] == 1.0


def test_paired_tests_find_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 600)
    base = rng.dirichlet([1, 1, 1], 600)
    strong, weak = base + 1.0 * np.eye(3)[labels], base + 0.3 * np.eye(3)[labels]
    strong, weak = strong / strong.sum(1, keepdims=True), weak / weak.sum(1, keepdims=True)
    diff = paired_bootstrap(strong, weak, labels, n_resamples=500)
    assert diff["accuracy"]["low"] > 0 and diff["accuracy"]["p_value"] < 0.01
    same = paired_bootstrap(strong, strong, labels, n_resamples=500)
    assert same["macro_auc"]["difference"] == 0 and same["macro_auc"]["p_value"] == 1.0
    abnormal = (labels != 2).astype(int)
    test = delong_paired_test(abnormal, 1 - strong[:, 2], 1 - weak[:, 2])
    assert test["difference"] > 0 and test["p_value"] < 0.01 and test["low"] < test["difference"] < test["high"]
