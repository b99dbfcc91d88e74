"""The classification study's own logic: recipes, the CNN baseline's network, the summary of runs."""

from __future__ import annotations

import csv
import gzip
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_helpers import BUNDLES
from monai.bundle import ConfigParser

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def _experiment(name: str):
    """Import a script of ``experiments/`` (they import their sibling ``bundle_workflow``)."""
    sys.path.insert(0, str(EXPERIMENTS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(EXPERIMENTS))


@pytest.fixture(scope="module")
def study():
    return _experiment("pretrain_vs_scratch")


@pytest.fixture(scope="module")
def seg():
    return _experiment("segmentation_pretrain_vs_scratch")


def test_recipes_parse_and_reject_unknown_inits(study):
    assert study.parse_recipe("gmml:5e-4:0.75") == {
        "init": "gmml",
        "encoder": None,
        "lr": 5e-4,
        "layer_decay": 0.75,
        "drop_path": 0.0,
        "configs": [],
        "overrides": {},
        "name": "gmml:5e-4:0.75",
    }
    assert study.parse_recipe("gmml:5e-4:0.75+block8+ema")["overrides"] == {"feature_block": 8}
    with pytest.raises(ValueError, match="blockN is a ViT option"):
        study.parse_recipe("resnet18:1e-3:1+block8")
    assert study.parse_recipe("scratch:5e-4:0.75:0.1")["drop_path"] == 0.1
    strong = study.parse_recipe("resnet18:1e-3:1+strongaug+ema")
    assert strong["configs"] == ["strong_augmentation.json", "ema.json"] and strong["lr"] == 1e-3
    assert all((BUNDLES / "spcxr_cxr_classification" / "configs" / c).is_file() for c in strong["configs"])
    smooth = study.parse_recipe("gmml:5e-4:0.75+smooth")["configs"]
    assert (
        smooth == ["label_smoothing.json"] and (BUNDLES / "spcxr_cxr_classification" / "configs" / smooth[0]).is_file()
    )
    with pytest.raises(ValueError, match="unknown option"):
        study.parse_recipe("gmml:5e-4:0.75+mixup")
    named = study.parse_recipe("gmml@gmml-vit-tiny16-cxr128:1e-3:0.9")
    assert named["init"] == "gmml" and named["encoder"] == "gmml-vit-tiny16-cxr128" and named["layer_decay"] == 0.9
    with pytest.raises(ValueError, match="unknown init"):
        study.parse_recipe("vgg:1e-3:1")
    with pytest.raises(ValueError, match="drop path is a ViT option"):
        study.parse_recipe("resnet18:1e-3:1:0.1")
    with pytest.raises(ValueError, match="is not INIT"):
        study.parse_recipe("gmml:5e-4")
    with pytest.raises(ValueError, match="names a released encoder"):
        study.parse_recipe("gmml@vit-huge:1e-3:1")
    with pytest.raises(ValueError, match="names a released encoder"):
        study.parse_recipe("scratch@gmml-vit-tiny16-cxr128:1e-3:1")


@pytest.mark.parametrize("name", ["resnet18", "densenet121"])
def test_cnn_baselines_take_one_grey_channel_and_give_class_logits(study, name):
    net = ConfigParser({"net": study.cnn_def(name, 3)}).get_parsed_content("net").eval()
    with torch.no_grad():
        assert net(torch.randn(2, 1, 64, 64)).shape == (2, 3)


def test_summary_merges_runs_and_reports_the_difference(study, tmp_path):
    fields = [
        "fraction",
        "seed",
        "init",
        "recipe",
        "n_train",
        "epochs",
        "internal_val_auc",
        "covid_val_acc",
        "covid_val_auc",
        "pediatric_acc",
        "pediatric_auc",
    ]
    runs = tmp_path / "runs.csv"
    with open(runs, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(fields)
        for seed, (g, s) in enumerate([(0.80, 0.60), (0.70, 0.60)]):
            writer.writerow([0.1, seed, "gmml", "gmml:5e-4:0.75", 300, 30, 0.9, g, 0.9, 0.8, 0.85])
            writer.writerow([0.1, seed, "scratch", "scratch:5e-4:0.75", 300, 30, 0.8, s, 0.8, 0.7, 0.75])
            writer.writerow(
                [0.1, seed, "gmml", "gmml@gmml-vit-tiny16-cxr128:5e-4:0.75", 300, 30, 0.9, g + 0.1, 0.9, 0.8, 0.85]
            )
    rows = study.read_runs([runs], study.TEXT_COLUMNS)
    assert rows[0]["covid_val_acc"] == 0.8 and rows[0]["recipe"] == "gmml:5e-4:0.75"
    study.write_summary(rows, tmp_path, "note")
    summary = (tmp_path / "summary.md").read_text()
    assert "| 10% | gmml:5e-4:0.75 | 2 | 300 | 30 | 0.900 ± 0.000 | 0.750 ± 0.050 |" in summary
    assert "covid_val_acc +0.150" in summary
    # a second encoder gets its own row and its own difference against scratch
    assert "Difference gmml@gmml-vit-tiny16-cxr128:5e-4:0.75 - scratch:5e-4:0.75" in summary
    assert "covid_val_acc +0.250" in summary
    assert (tmp_path / "summary.png").stat().st_size > 1000


def test_segmentation_cnn_baseline_fits_the_bundle_with_one_learning_rate(seg, tmp_path):
    """The UNet row swaps only ``network_def``: the bundle's optimiser then gives every parameter the same lr
    (no ViT blocks, so no layer decay) and the network maps one grey channel to two-class logits."""
    bundle = EXPERIMENTS.parent / "bundles" / "spcxr_lung_segmentation" / "configs" / "train.json"
    parser = ConfigParser()
    parser.read_config(str(bundle))
    parser.update(
        {
            "bundle_root": str(tmp_path),
            "network_def": seg.UNET_DEF,
            "pretrained_checkpoint": "",
            "learning_rate": 5e-4,
            "layer_decay": 0.75,
            "device": "$torch.device('cpu')",
        }
    )
    net = parser.get_parsed_content("network").eval()
    assert type(net).__name__ == "UNet"
    with torch.no_grad():
        assert net(torch.randn(2, 1, 128, 128)).shape == (2, 2, 128, 128)
    groups = parser.get_parsed_content("optimizer").param_groups
    assert {g["lr"] for g in groups} == {5e-4}
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(p.numel() for p in net.parameters())


def test_segmentation_summary_averages_seeds_per_fraction_and_plots(seg, tmp_path):
    base = {
        "n_train": 299,
        "epochs": 22,
        "train_seconds": 900.0,
        "best_epoch": 20,
        "n_eval": 923,
        "dice_median": 0.94,
        "dice_p10": 0.86,
        "hd95_mean": 6.0,
        "hd95_undefined": 0,
    }
    rows = [
        {**base, "fraction": 0.1, "seed": s, "init": init, "internal_val_dice": d, "dice_mean": d}
        for s, (init, d) in enumerate([("gmml", 0.92), ("gmml", 0.94), ("scratch", 0.90), ("unet", 0.95)])
    ]
    seg.write_runs(rows, tmp_path)
    merged = seg.read_runs([tmp_path / "runs.csv"], seg.TEXT_COLUMNS)
    assert merged[0]["init"] == "gmml" and merged[0]["dice_mean"] == pytest.approx(0.92)
    seg.write_summary(merged, tmp_path, "note")
    summary = (tmp_path / "summary.md").read_text()
    assert "| 10% | gmml | 2 | 299 | 22 | 0.930 ± 0.010 | 0.930 ± 0.010 |" in summary
    assert "- 10% of the masks: mean Dice +0.030" in summary
    assert "| 10% | unet | 1 | 299 | 22 | 0.950 ± 0.000 | 0.950 ± 0.000 |" in summary
    assert summary.startswith("note unet: MONAI's residual UNet")
    assert (tmp_path / "summary.png").stat().st_size > 5_000


def test_sweep_gives_every_arm_the_same_subset_and_a_minimum_step_budget():
    sweep = _experiment("sweep")
    items = [{"image": f"{c}{i}.png", "label": c, "patient": f"{c}{i}"} for c in range(3) for i in range(100)]
    runs = list(sweep.sweep(items, [0.1, 1.0], [0, 1], ["a", "b"], batch_size=10, epochs=5, min_steps=60, val_evals=4))
    assert [(r.fraction, r.seed, r.arm) for r in runs[:4]] == [
        (0.1, 0, "a"),
        (0.1, 0, "b"),
        (0.1, 1, "a"),
        (0.1, 1, "b"),
    ]
    small, full = runs[0], runs[-1]
    assert small.n_train == 30 and small.epochs == 20 and small.val_interval == 5  # 3 steps an epoch, >= 60 steps
    assert full.n_train == 300 and full.epochs == 5 and full.val_interval == 1  # 30 steps an epoch: 5 epochs suffice


def test_summary_pairs_pretrained_and_scratch_on_the_same_images(study, tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    folder = tmp_path / "predictions"
    folder.mkdir()
    for recipe, strength in (("gmml:5e-4:0.75", 3.0), ("scratch:5e-4:0.75", 0.5)):
        for name in ("covid_val", "pediatric"):
            probs = np.exp(strength * np.eye(3)[labels] + rng.normal(0, 1, (300, 3)))
            probs /= probs.sum(1, keepdims=True)
            # kept gzipped, as the study keeps them
            with gzip.open(folder / f"{study._run_tag(0.1, 0, recipe)}_{name}.csv.gz", "wt", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["image", "label", "p_covid", "p_pneumonia", "p_normal"])
                writer.writerows([f"i{i}.png", labels[i], *probs[i]] for i in range(300))
    rows = [{"fraction": 0.1, "seed": 0.0, "recipe": r} for r in ("gmml:5e-4:0.75", "scratch:5e-4:0.75")]
    lines = study.paired_lines(rows, [tmp_path / "elsewhere", tmp_path])
    covid = next(line for line in lines if "covid_val (300 images)" in line)
    assert "gmml:5e-4:0.75 - scratch:5e-4:0.75 accuracy +0." in covid and "exact McNemar p = " in covid
    assert float(covid.split("p = ")[1].split()[0]) < 1e-3
    assert any("pediatric (300 images)" in line and "DeLong p = " in line for line in lines)
    assert study.paired_lines(rows[:1], [tmp_path]) == []  # nothing to pair with


def test_study_intervals_reads_a_committed_runs_file(tmp_path, monkeypatch):
    intervals = _experiment("study_intervals")
    runs = EXPERIMENTS / "results" / "scaling" / "stage13_f10_s0" / "runs.csv"
    out = tmp_path / "intervals.md"
    monkeypatch.setattr(sys, "argv", ["study_intervals.py", str(runs), "--out", str(out)])
    intervals.main()
    # stage 13, seed 0, 10% labels: 733 of 925 val images right (0.792) and 616 of 694 pediatric (0.888), with
    # Wilson's interval for that many images
    assert (
        "| 10% | gmml:5e-4:0.75 | 1 | 0.792 [0.765, 0.817] (0.000) | 0.888 [0.862, 0.909] (0.000) |" in out.read_text()
    )
