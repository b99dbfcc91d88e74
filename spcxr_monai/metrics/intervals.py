"""95% confidence intervals for the figures a study reports, and paired tests of two models on the same images.

- a plain proportion (accuracy, one class's recall or precision): Wilson's score interval (scipy's
  ``binomtest(...).proportion_ci``);
- an AUC: DeLong's variance (DeLong et al. 1988, in the fast form of Sun & Xu 2014), a normal interval;
- what has no closed form (balanced accuracy, macro F1, macro AUC, mean Dice, mean HD95): a percentile
  bootstrap, seeded, resampling within each class (stratified) so every resample keeps the class counts;
- two models on the same images: the exact McNemar test on the images where exactly one is right (scipy's
  ``binomtest``), DeLong's paired test of two AUCs, and a paired bootstrap of any difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import binomtest, norm

__all__ = [
    "Interval",
    "auc_interval",
    "classification_intervals",
    "delong_auc",
    "delong_paired_test",
    "mcnemar_exact",
    "paired_bootstrap",
    "segmentation_intervals",
    "wilson_interval",
]

N_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """An estimate with its two-sided confidence interval and how the interval was made."""

    estimate: float
    low: float
    high: float
    method: str
    confidence: float = 0.95

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson's score interval of a proportion ``successes / n`` (NaN for n = 0)."""
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), "wilson", confidence)
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return Interval(successes / n, float(ci.low), float(ci.high), "wilson", confidence)


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their mean rank, along the last axis."""
    order = np.argsort(x, axis=-1, kind="mergesort")
    ranks = np.empty(x.shape, dtype=np.float64)
    for row in range(x.shape[0]):
        sorted_x = x[row, order[row]]
        # positions where a run of ties starts and ends
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_x)) + 1]
        ends = np.r_[starts[1:], len(sorted_x)]
        mean_rank = (starts + ends + 1) / 2.0
        ranks[row, order[row]] = np.repeat(mean_rank, ends - starts)
    return ranks


def delong_auc(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of several score rows on the same binary ``truth`` and DeLong's covariance matrix of them.

    Args:
        truth: (N,) 0 / 1.
        scores: (K, N) or (N,): higher means class 1.

    Returns:
        ``(aucs (K,), covariance (K, K))``.

    Raises:
        ValueError: ``truth`` lacks one of the two classes.
    """
    truth = np.asarray(truth).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    positives, negatives = scores[:, truth], scores[:, ~truth]
    m, n = positives.shape[1], negatives.shape[1]
    if m == 0 or n == 0:
        raise ValueError(f"an AUC needs both classes; got {m} positive and {n} negative images")
    tx, ty, tz = _midranks(positives), _midranks(negatives), _midranks(np.concatenate([positives, negatives], 1))
    aucs = (tz[:, :m].sum(1) / m - (m + 1) / 2.0) / n
    v01 = (tz[:, :m] - tx) / n  # structural components of the positives
    v10 = 1.0 - (tz[:, m:] - ty) / m  # and of the negatives
    covariance = np.atleast_2d(np.cov(v01)) / m + np.atleast_2d(np.cov(v10)) / n
    return aucs, covariance


def auc_interval(truth: np.ndarray, scores: np.ndarray, confidence: float = 0.95) -> Interval:
    """The AUC of ``scores`` for binary ``truth`` with DeLong's normal interval, clipped to [0, 1]."""
    aucs, cov = delong_auc(truth, scores)
    z = norm.ppf(0.5 + confidence / 2)
    se = float(np.sqrt(max(cov[0, 0], 0.0)))
    auc = float(aucs[0])
    return Interval(auc, max(0.0, auc - z * se), min(1.0, auc + z * se), "delong", confidence)


def _stratified_indices(strata: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, N) indices drawn with replacement within each stratum (class counts kept)."""
    out = np.empty((n_resamples, len(strata)), dtype=np.int64)
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        out[:, members] = members[rng.integers(0, len(members), size=(n_resamples, len(members)))]
    return out


def _resample_weights(strata: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, N) how often each item is drawn in each stratified resample (row sums: N)."""
    idx = _stratified_indices(strata, n_resamples, np.random.default_rng(seed))
    weights = np.zeros(idx.shape, dtype=np.float64)
    np.add.at(weights, (np.arange(idx.shape[0])[:, None], idx), 1.0)
    return weights


def _weighted_auc(scores: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(R,) AUC of ``scores`` for binary ``truth`` with item weights (R, N) (ties count one half)."""
    order = np.argsort(scores, kind="mergesort")
    sorted_scores, sorted_truth = scores[order], truth[order].astype(bool)
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]  # groups of tied scores
    w = weights[:, order]
    neg = np.add.reduceat(w * ~sorted_truth, starts, axis=1)  # (R, G) negative weight per tie group
    pos = np.add.reduceat(w * sorted_truth, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    total = pos.sum(1) * neg.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (pos * (below + 0.5 * neg)).sum(1) / total, np.nan)


def _classification_figures(probs: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Balanced accuracy, macro F1 and macro one-vs-rest AUC for each weighting (R, N) of the images."""
    classes = probs.shape[1]
    predicted = probs.argmax(1)
    pairs = np.zeros((len(labels), classes * classes))
    pairs[np.arange(len(labels)), labels * classes + predicted] = 1.0
    cm = (weights @ pairs).reshape(-1, classes, classes)  # (R, true, predicted)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    support, called = cm.sum(2), cm.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
        f1 = np.where(support + called > 0, 2 * tp / (support + called), 0.0)
    present = support > 0
    aucs = np.stack([_weighted_auc(probs[:, c], labels == c, weights) for c in range(classes)], 1)
    if classes == 2:
        macro_auc = aucs[:, 1]
    else:
        macro_auc = np.nanmean(np.where(present, aucs, np.nan), 1)
    return {
        "balanced_accuracy": np.nanmean(recall, 1),
        "macro_f1": np.where(present, f1, 0.0).sum(1) / classes,
        "macro_auc": macro_auc,
    }


def _percentiles(values: np.ndarray, estimate: float, confidence: float) -> Interval:
    values = values[np.isfinite(values)]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha]) if len(values) else (np.nan, np.nan)
    return Interval(float(estimate), float(low), float(high), "bootstrap", confidence)


def classification_intervals(
    probs: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
    normal_class: str = "normal",
) -> dict[str, dict]:
    """95% intervals of a classifier's figures on one test set.

    Accuracy, each class's recall and precision: Wilson. Balanced accuracy, macro F1 and macro one-vs-rest AUC:
    a percentile bootstrap stratified by class, vectorised over the resamples. Normal vs abnormal AUC
    (score 1 - p(normal)): DeLong.

    Args:
        probs: (N, C) class probabilities.
        labels: (N,) true class indices.
        class_names: the C names in label order.
        n_resamples, seed: of the stratified bootstrap.
        normal_class: the class whose complement is "abnormal"; that AUC is left out if the class is absent.

    Returns:
        ``{"accuracy", "balanced_accuracy", "macro_f1", "macro_auc", "normal_vs_abnormal_auc"?,
        "per_class": {name: {"recall", "precision"}}}``, each an :meth:`Interval.as_dict`.
    """
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    predicted = probs.argmax(1)
    correct = predicted == labels
    out: dict[str, dict] = {"accuracy": wilson_interval(int(correct.sum()), len(labels), confidence).as_dict()}
    point = _classification_figures(probs, labels, np.ones((1, len(labels))))
    resampled = _classification_figures(probs, labels, _resample_weights(labels, n_resamples, seed))
    for name, values in resampled.items():
        out[name] = _percentiles(values, float(point[name][0]), confidence).as_dict()
    if normal_class in class_names and probs.shape[1] > 2:
        normal = list(class_names).index(normal_class)
        abnormal = (labels != normal).astype(int)
        if 0 < abnormal.sum() < len(abnormal):
            out["normal_vs_abnormal_auc"] = auc_interval(abnormal, 1 - probs[:, normal], confidence).as_dict()
    out["per_class"] = {
        name: {
            "recall": wilson_interval(
                int((correct & (labels == c)).sum()), int((labels == c).sum()), confidence
            ).as_dict(),
            "precision": wilson_interval(
                int((correct & (predicted == c)).sum()), int((predicted == c).sum()), confidence
            ).as_dict(),
        }
        for c, name in enumerate(class_names)
    }
    return out


def segmentation_intervals(
    per_image: dict[str, np.ndarray], n_resamples: int = N_RESAMPLES, seed: int = 0, confidence: float = 0.95
) -> dict[str, dict]:
    """Bootstrap (over images) intervals of the mean of each per-image figure, e.g. ``{"dice": ..., "hd95":
    ...}``; non-finite values (an HD95 of an empty prediction) are left out of the means and counted."""
    out = {}
    for name, values in per_image.items():
        values = np.asarray(values, dtype=np.float64)
        finite = values[np.isfinite(values)]
        weights = _resample_weights(np.zeros(len(finite), dtype=np.int64), n_resamples, seed)
        interval = _percentiles(weights @ finite / max(len(finite), 1), float(finite.mean()), confidence)
        out[name] = {**interval.as_dict(), "n": int(len(finite)), "undefined": int(len(values) - len(finite))}
    return out


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Exact McNemar test of two classifiers' accuracies on the same images.

    Returns:
        ``{"only_a_right", "only_b_right", "p_value"}``: the two-sided binomial test of the discordant pairs.
    """
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {"only_a_right": only_a, "only_b_right": only_b, "p_value": float(p)}


def delong_paired_test(truth: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, confidence: float = 0.95) -> dict:
    """DeLong's test of two correlated AUCs (same images): ``{"auc_a", "auc_b", "difference", "low", "high",
    "p_value"}`` (difference a - b with its normal interval)."""
    aucs, cov = delong_auc(truth, np.vstack([scores_a, scores_b]))
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    se = np.sqrt(max(var, 0.0))
    z = norm.ppf(0.5 + confidence / 2)
    p = float(2 * norm.sf(abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)
    return {
        "auc_a": float(aucs[0]),
        "auc_b": float(aucs[1]),
        "difference": diff,
        "low": diff - z * se,
        "high": diff + z * se,
        "p_value": p,
    }


def paired_bootstrap(
    probs_a: np.ndarray,
    probs_b: np.ndarray,
    labels: np.ndarray,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, dict]:
    """Model a minus model b on the same images, resampled together (stratified by class): for accuracy,
    balanced accuracy, macro F1 and macro AUC, ``{"difference", "low", "high", "p_value"}`` (percentile interval;
    two-sided bootstrap p-value: twice the share of resamples on the far side of 0, at least 2 / (R + 1))."""
    labels = np.asarray(labels, dtype=np.int64)
    probs_a, probs_b = np.asarray(probs_a, dtype=np.float64), np.asarray(probs_b, dtype=np.float64)
    weights = _resample_weights(labels, n_resamples, seed)
    ones = np.ones((1, len(labels)))
    out = {}
    fa, fb = _classification_figures(probs_a, labels, weights), _classification_figures(probs_b, labels, weights)
    pa, pb = _classification_figures(probs_a, labels, ones), _classification_figures(probs_b, labels, ones)
    correct_a, correct_b = probs_a.argmax(1) == labels, probs_b.argmax(1) == labels
    fa["accuracy"], fb["accuracy"] = weights @ correct_a / len(labels), weights @ correct_b / len(labels)
    pa["accuracy"], pb["accuracy"] = np.array([correct_a.mean()]), np.array([correct_b.mean()])
    alpha = (1 - confidence) / 2
    for name in ("accuracy", "balanced_accuracy", "macro_f1", "macro_auc"):
        diffs = fa[name] - fb[name]
        diffs = diffs[np.isfinite(diffs)]
        low, high = np.quantile(diffs, [alpha, 1 - alpha])
        # (1 + count) / (1 + R): a bootstrap p-value is never 0, its floor is the resolution of R resamples
        p = min(1.0, 2 * (1 + min(np.sum(diffs <= 0), np.sum(diffs >= 0))) / (1 + len(diffs)))
        out[name] = {
            "difference": float(pa[name][0] - pb[name][0]),
            "low": float(low),
            "high": float(high),
            "p_value": float(p),
        }
    return out
