"""The drift test: MMD with a permutation p-value, and `spcxr drift` on real folders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spcxr_monai.cli import main as spcxr
from spcxr_monai.metrics import mmd_permutation_test


def test_same_distribution_is_not_called_drift_and_a_shift_is():
    rng = np.random.default_rng(0)
    same = [
        mmd_permutation_test(rng.normal(size=(40, 16)), rng.normal(size=(40, 16)), 300, seed=i).p_value
        for i in range(20)
    ]
    assert sum(p < 0.05 for p in same) <= 3  # ~5% by construction
    shifted = mmd_permutation_test(rng.normal(size=(40, 16)), rng.normal(size=(40, 16)) + 0.5, 300)
    assert shifted.p_value < 0.01 and shifted.effect_size > 5
    assert shifted.p_value == pytest.approx(1 / 301)  # no permutation reached the observed MMD


def test_the_witness_points_at_the_shifted_items():
    rng = np.random.default_rng(1)
    new = rng.normal(size=(30, 8))
    new[:5] += 3.0  # five outliers
    result = mmd_permutation_test(rng.normal(size=(60, 8)), new, 200)
    assert set(np.argsort(-result.witness)[:5]) == set(range(5))


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="at least 2"):
        mmd_permutation_test(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        mmd_permutation_test(np.zeros((5, 4)), np.zeros((5, 3)))


@pytest.mark.slow
def test_spcxr_drift_tells_pediatric_from_adult_and_adult_from_adult(shared_data, tmp_path, capsys):
    train = shared_data / "covid-qu-ex" / "train"
    results = {}
    for name, folder in (
        ("pediatric", shared_data / "pediatric" / "train"),
        ("val", shared_data / "covid-qu-ex" / "val"),
    ):
        plot = tmp_path / f"{name}.png"
        assert (
            spcxr(
                ["drift", str(train), str(folder), "--n", "40", "--permutations", "300", "--json", "--plot", str(plot)]
            )
            == 0
        )
        results[name] = json.loads(capsys.readouterr().out)
        assert plot.stat().st_size > 10_000
    assert results["pediatric"]["p_value"] < 0.01 and results["val"]["p_value"] >= 0.05
    assert results["pediatric"]["effect_size"] > 5 * max(results["val"]["effect_size"], 1)
    assert results["val"]["near_duplicates_dropped"] >= 1  # COVID-QU-Ex val has copies of train images
    shifted = results["pediatric"]["most_shifted"]
    assert len(shifted) == 10 and shifted[0]["witness"] >= shifted[-1]["witness"]
