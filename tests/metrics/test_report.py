"""``spcxr report`` and ``spcxr compare`` on predictions with a known answer; calibration and the screening
operating point."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from spcxr_monai.cli import main as spcxr
from spcxr_monai.metrics import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    read_predictions,
    screening_threshold,
)

CLASSES = ["covid", "pneumonia", "normal"]


def _write(path, labels, probs, files=None):
    files = files or [f"img{i}.png" for i in range(len(labels))]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "label", *[f"p_{c}" for c in CLASSES]])
        for name, label, p in zip(files, labels, probs):
            writer.writerow([name, int(label), *[f"{v:.6f}" for v in p]])
    return path


def _model(labels, strength, rng, temperature=1.0):
    logits = strength * np.eye(3)[labels] + rng.normal(0, 1, (len(labels), 3))
    p = np.exp(logits / temperature)
    return p / p.sum(1, keepdims=True)


def test_report_gives_the_known_accuracy_with_an_interval_and_writes_the_plots(tmp_path, capsys):
    labels = np.repeat([0, 1, 2], 100)
    probs = np.full((300, 3), 0.1)
    probs[np.arange(300), labels] = 0.8
    probs[:60] = [0.1, 0.1, 0.8]  # 60 covid images called normal: accuracy 0.8, covid recall 0.4
    path = _write(tmp_path / "predictions.csv", labels, probs)
    assert spcxr(["report", str(path), "--json", "--plots", str(tmp_path / "plots"), "--threshold", "0.5"]) == 0
    report = json.loads(capsys.readouterr().out)
    acc = report["intervals"]["accuracy"]
    assert acc["estimate"] == pytest.approx(0.8) and acc["low"] < 0.8 < acc["high"] and acc["method"] == "wilson"
    assert report["intervals"]["per_class"]["covid"]["recall"]["estimate"] == pytest.approx(0.4)
    # abnormal = covid or pneumonia (200); 1 - p(normal) >= 0.5 catches the 140 not called normal
    assert report["screening"]["sensitivity"]["estimate"] == pytest.approx(140 / 200)
    assert report["screening"]["specificity"]["estimate"] == pytest.approx(1.0)
    assert report["calibration"]["ece"] == pytest.approx(0.0, abs=1e-9)  # 0.8 confident, 80% right
    for name in ("reliability", "roc", "precision_recall", "confusion_matrix"):
        assert (tmp_path / "plots" / f"{name}.png").stat().st_size > 5000


def test_compare_pairs_by_file_and_finds_the_better_model(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 400)
    a = _write(tmp_path / "a.csv", labels, _model(labels, 3.0, rng))
    order = rng.permutation(400)  # the same images in another order
    b = _write(tmp_path / "b.csv", labels[order], _model(labels, 1.0, rng)[order], [f"img{i}.png" for i in order])
    assert spcxr(["compare", str(a), str(b), "--json", "--resamples", "500"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 400
    assert result["mcnemar"]["only_a_right"] > result["mcnemar"]["only_b_right"]
    assert result["mcnemar"]["p_value"] < 1e-3
    assert result["paired_bootstrap"]["accuracy"]["low"] > 0
    assert result["normal_vs_abnormal_auc"]["difference"] > 0
    assert spcxr(["compare", str(a), str(a)]) == 0
    assert "accuracy difference +0.000" in capsys.readouterr().out


def test_compare_refuses_different_image_sets_naming_the_counts(tmp_path, capsys):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 50)
    a = _write(tmp_path / "a.csv", labels, _model(labels, 2.0, rng))
    b = _write(tmp_path / "b.csv", labels[:40], _model(labels, 2.0, rng)[:40])
    assert spcxr(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "(50 images)" in err and "(40 images)" in err and "40 in both" in err


def test_report_of_a_file_that_is_not_predictions_is_one_clear_error(tmp_path, capsys):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    assert spcxr(["report", str(bad)]) == 2
    assert "not a predictions.csv" in capsys.readouterr().err
    assert spcxr(["report", str(tmp_path / "missing.csv")]) == 2


def test_temperature_scaling_fixes_an_overconfident_model():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 8000)
    # logits x = 1.5 e_y + N(0, 1): the posterior is softmax(1.5 x); softmax(x / 0.3) is too sharp by 1 / (0.3 * 1.5)
    overconfident = _model(labels, 1.5, rng, temperature=0.3)
    fit, test = slice(0, 4000), slice(4000, None)
    before = expected_calibration_error(overconfident[test], labels[test])["ece"]
    temperature = fit_temperature(overconfident[fit], labels[fit])
    assert temperature == pytest.approx(1 / (0.3 * 1.5), rel=0.1)
    calibrated = apply_temperature(overconfident[test], temperature)
    after = expected_calibration_error(calibrated, labels[test])["ece"]
    assert before > 0.1 and after < 0.03
    assert np.array_equal(calibrated.argmax(1), overconfident[test].argmax(1))  # answers unchanged


def test_screening_threshold_reaches_the_target_sensitivity_on_its_split():
    rng = np.random.default_rng(3)
    abnormal = rng.integers(0, 2, 1000)
    scores = abnormal + rng.normal(0, 0.8, 1000)
    chosen = screening_threshold(scores, abnormal, 0.95)
    assert chosen["sensitivity"] >= 0.95 and chosen["sensitivity"] < 0.95 + 2 / chosen["n_abnormal"]
    assert screening_threshold(scores, abnormal, 0.8)["threshold"] > chosen["threshold"]  # less sensitive, higher
    with pytest.raises(ValueError, match="target_sensitivity"):
        screening_threshold(scores, abnormal, 1.5)


def test_read_predictions_reads_the_evaluations_columns(tmp_path):
    path = _write(tmp_path / "p.csv", [0, 2], [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    pred = read_predictions(path)
    assert pred.classes == CLASSES and pred.labels.tolist() == [0, 2] and pred.probs.shape == (2, 3)


def test_read_predictions_reads_a_gzipped_file_as_the_plain_one(tmp_path):
    import gzip

    path = _write(tmp_path / "p.csv", [0, 2], [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    (tmp_path / "p.csv.gz").write_bytes(gzip.compress(path.read_bytes()))
    plain, packed = read_predictions(path), read_predictions(tmp_path / "p.csv.gz")
    assert packed.classes == plain.classes and packed.labels.tolist() == [0, 2]
    np.testing.assert_array_equal(packed.probs, plain.probs)
