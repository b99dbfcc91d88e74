"""Classification bundle: metadata and I/O checks, training from a GMML checkpoint and from scratch,
evaluation reports that match scikit-learn, inference and ``spcxr predict`` on a DICOM."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_helpers import BUNDLES, run_bundle

from spcxr_monai.cli import main as spcxr
from spcxr_monai.data import sample_dicom, sample_dir
from spcxr_monai.networks import create_gmml_vit

pytestmark = pytest.mark.slow  # trains the bundle

BUNDLE = BUNDLES / "spcxr_cxr_classification"
TINY = ["--model_size", "tiny", "--image_size", "32", "--batch_size", "8"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Fine-tune for 2 epochs on the embedded sample from a (random) GMML checkpoint file."""
    root = tmp_path_factory.mktemp("clf")
    torch.manual_seed(0)
    gmml = create_gmml_vit("tiny", img_size=64)  # other image size: position embeddings are resized
    torch.save(gmml.state_dict(), root / "gmml.pt")
    proc = run_bundle(
        "spcxr_cxr_classification",
        "training",
        "--config_file",
        "configs/train.json",
        "--bundle_root",
        str(root),
        "--epochs",
        "2",
        "--pretrained_checkpoint",
        str(root / "gmml.pt"),
        *TINY,
    )
    log = proc.stdout + proc.stderr
    assert "encoder initialised from" in log
    return root, gmml


def test_training_writes_models_and_a_validation_report(trained):
    root, gmml = trained
    assert (root / "models" / "model.pt").is_file() and (root / "models" / "model_final.pt").is_file()
    state = torch.load(root / "models" / "model_final.pt", map_location="cpu", weights_only=True)["network"]
    assert state["head.1.weight"].shape == (3, 192)
    # the encoder started from the checkpoint and moved by fine-tuning, but not far in 2 epochs
    assert not torch.equal(state["vit.blocks.0.attn.qkv.weight"], gmml.state_dict()["vit.blocks.0.attn.qkv.weight"])
    report = json.loads((root / "logs" / "validation" / "metrics.json").read_text())
    assert report["classes"] == ["covid", "pneumonia", "normal"] and report["n"] == 12
    # calibrated on the internal validation split after training: a temperature and a screening threshold
    calibration = json.loads((root / "models" / "calibration.json").read_text())
    assert calibration["n"] == 12 and 0.05 <= calibration["temperature"] <= 20
    assert calibration["screening"]["target_sensitivity"] == 0.95 and calibration["screening"]["sensitivity"] >= 0.95
    assert 0 <= calibration["threshold"] <= 1


def test_evaluation_metrics_match_sklearn_on_real_images(trained):
    from sklearn import metrics as skm

    root, _ = trained
    run_bundle(
        "spcxr_cxr_classification",
        "evaluating",
        "--config_file",
        "['configs/train.json','configs/evaluate.json']",
        "--bundle_root",
        str(root),
        *TINY,
    )
    out = root / "eval"
    report = json.loads((out / "metrics.json").read_text())
    with open(out / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == report["n"] == 60  # every sample image
    labels = np.array([int(r["label"]) for r in rows])
    probs = np.array([[float(r[f"p_{c}"]) for c in report["classes"]] for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-4)
    pred = probs.argmax(1)
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(labels, pred))
    assert report["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(labels, pred))
    assert report["macro_auc"] == pytest.approx(skm.roc_auc_score(labels, probs, multi_class="ovr"), abs=1e-4)
    f1 = skm.f1_score(labels, pred, average=None, labels=[0, 1, 2], zero_division=0)
    assert [report["per_class"][c]["f1"] for c in report["classes"]] == pytest.approx(f1.tolist())
    cm = json.loads((out / "confusion_matrix.json").read_text())["rows_true_columns_predicted"]
    assert cm == skm.confusion_matrix(labels, pred, labels=[0, 1, 2]).tolist()
    assert (out / "confusion_matrix.png").stat().st_size > 5_000
    # the input gate checked every evaluated image: the sample's CXRs pass (at most one false alarm)
    assert report["gate"]["checked"] == 60 and report["gate"]["flagged"] <= 1
    assert len(json.loads((out / "gate.json").read_text())) == 60
    # the full report: intervals, calibration with the model's temperature, the screening operating point, plots
    full = json.loads((out / "report.json").read_text())
    acc = full["intervals"]["accuracy"]
    assert acc["estimate"] == pytest.approx(report["accuracy"]) and acc["low"] <= acc["estimate"] <= acc["high"]
    calibration = json.loads((root / "models" / "calibration.json").read_text())
    assert full["calibration"]["temperature"] == pytest.approx(calibration["temperature"])
    assert full["screening"]["threshold"] == pytest.approx(calibration["threshold"])
    abnormal = labels != 2
    scores = 1 - probs[:, 2]
    called = scores >= calibration["threshold"]
    # the CSV's 6 decimals can move a score that sits exactly on the threshold (a validation image's) to one side
    expected = (called & abnormal).sum() / abnormal.sum()
    assert abs(full["screening"]["sensitivity"]["estimate"] - expected) <= 1 / abnormal.sum() + 1e-9
    for plot in ("reliability", "roc", "precision_recall", "confusion_matrix"):
        assert (out / "plots" / f"{plot}.png").stat().st_size > 5_000


def test_inference_and_spcxr_predict_on_a_dicom(trained, capsys):
    root, _ = trained
    assert (
        spcxr(
            [
                "predict",
                sample_dicom(),
                "--bundle",
                str(BUNDLE),
                "--set",
                f"ckpt_dir={root / 'models'}",
                "model_size=tiny",
                "image_size=32",
            ]
        )
        == 0
    )
    predictions = json.loads(capsys.readouterr().out)
    probs = predictions[sample_dicom()]
    gate = probs.pop("gate")  # the input gate's verdict comes with every answer
    assert gate["ok"] is True and gate["reasons"] == [] and gate["scores"]["template_correlation"] > 0.5
    screening = probs.pop("screening")  # the calibrated threshold's verdict and where the threshold came from
    assert set(probs) == {"covid", "pneumonia", "normal"}
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
    assert screening["abnormal_score"] == pytest.approx(1 - probs["normal"], abs=1e-5)
    assert screening["verdict"] == ("abnormal" if screening["abnormal_score"] >= screening["threshold"] else "normal")
    assert "internal validation split" in screening["fitted_on"] and screening["target_sensitivity"] == 0.95


def test_spcxr_predict_answers_a_flagged_image_and_marks_it(trained, capsys, tmp_path):
    from PIL import Image

    root, _ = trained
    inverted = tmp_path / "inverted.png"
    grey = np.asarray(Image.open(sorted(Path(sample_dir()).rglob("images/*.png"))[0]).convert("L"))
    Image.fromarray(255 - grey).save(inverted)
    assert (
        spcxr(
            [
                "predict",
                str(inverted),
                "--bundle",
                str(BUNDLE),
                "--set",
                f"ckpt_dir={root / 'models'}",
                "model_size=tiny",
                "image_size=32",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    result = json.loads(out)[str(inverted)]
    assert result["gate"]["ok"] is False and result["gate"]["reasons"][0].startswith("inverted")
    assert {"covid", "pneumonia", "normal"} <= set(result)  # still answered
    assert "flagged by the input gate: inverted" in err


def test_spcxr_predict_reports_each_bad_file_and_keeps_the_good_ones(trained, capsys, tmp_path):
    root, _ = trained
    hashed = tmp_path / "scan #1.dcm"  # '#' is special to the bundle parser
    hashed.write_bytes(open(sample_dicom(), "rb").read())
    (tmp_path / "folder").mkdir()
    files = [str(hashed), str(tmp_path / "missing.png"), str(tmp_path / "folder"), sample_dicom()]
    rc = spcxr(
        [
            "predict",
            *files,
            "--bundle",
            str(BUNDLE),
            "--set",
            f"ckpt_dir={root / 'models'}",
            "model_size=tiny",
            "image_size=32",
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 1  # some failed
    results = json.loads(out)  # strict JSON
    assert list(results) == files
    gates = [results[f].pop("gate") for f in (str(hashed), sample_dicom())]
    assert gates[0] == gates[1]  # same pixels, same verdict
    screening = [results[f].pop("screening") for f in (str(hashed), sample_dicom())]
    assert screening[0] == screening[1]
    assert results[str(hashed)] == pytest.approx(results[sample_dicom()])  # same pixels, same answer
    assert set(results[sample_dicom()]) == {"covid", "pneumonia", "normal"}
    assert results[files[1]] == {"error": "file not found"}
    assert "folder" in results[files[2]]["error"]
    assert "missing.png: file not found" in err


def test_screening_mode_from_scratch(tmp_path):
    run_bundle(
        "spcxr_cxr_classification",
        "training",
        "--config_file",
        "configs/train.json",
        "--bundle_root",
        str(tmp_path),
        "--epochs",
        "1",
        "--task",
        "screening",
        *TINY,
    )
    report = json.loads((tmp_path / "logs" / "validation" / "metrics.json").read_text())
    assert report["classes"] == ["normal", "abnormal"]
    # 12 validation images: 4 normal, 8 abnormal (covid + pneumonia merged)
    assert report["per_class"]["normal"]["support"] == 4 and report["per_class"]["abnormal"]["support"] == 8


def test_ema_config_validates_and_keeps_the_average_and_training_resumes_with_it(tmp_path):
    args = ["--config_file", "['configs/train.json','configs/ema.json']", "--bundle_root", str(tmp_path), *TINY]
    run_bundle("spcxr_cxr_classification", "training", *args, "--epochs", "1", "--pretrained_checkpoint", "''")
    final = torch.load(tmp_path / "models" / "model_final.pt", map_location="cpu", weights_only=False)
    best = torch.load(tmp_path / "models" / "model.pt", map_location="cpu", weights_only=True)  # the bare weights
    average = final["ema"]["average"]
    assert int(average["n_averaged"]) == 6  # 6 optimiser steps (48 training images, batch 8)
    # the model kept (validated) is the average, not the raw weights training ended with
    for key, value in best.items():
        torch.testing.assert_close(value, average[f"module.{key}"])
    assert any(not torch.equal(value, final["network"][key]) for key, value in best.items())
    # a second epoch resumes the average from the checkpoint (12 steps in all, not 6)
    run_bundle("spcxr_cxr_classification", "training", *args, "--epochs", "2", "--pretrained_checkpoint", "''")
    resumed = torch.load(tmp_path / "models" / "model_final.pt", map_location="cpu", weights_only=False)
    assert int(resumed["ema"]["average"]["n_averaged"]) == 12


def test_linear_probe_from_the_released_encoder_trains_the_head_only(tmp_path, capsys):
    from spcxr_monai.pretrained import probe_block, released_encoder

    released = torch.load(released_encoder(), map_location="cpu", weights_only=True)
    digest = hashlib.sha256(open(released_encoder(), "rb").read()).hexdigest()
    run_bundle(
        "spcxr_cxr_classification",
        "training",
        "--config_file",
        "configs/train.json",
        "--bundle_root",
        str(tmp_path),
        "--epochs",
        "2",
        "--linear_probe",
        "true",
        "--model_size",
        "tiny",
        "--image_size",
        "128",
        "--batch_size",
        "16",
    )  # the default init is the released encoder
    state = torch.load(tmp_path / "models" / "model_final.pt", map_location="cpu", weights_only=True)["network"]
    for key in ("vit.blocks.0.attn.qkv.weight", "vit.blocks.11.mlp.linear2.weight", "vit.norm.weight"):
        torch.testing.assert_close(state[key], released[key].float())  # frozen: exactly the released weights
    # the head reads the release's probe block, standardised by statistics the training images set
    assert probe_block("released") in range(1, 12) and int(state["pooled_block"]) == probe_block("released")
    assert state["head.2.weight"].shape == (3, 192) and float(state["head.0.running_var"].mean()) != 1.0
    assert hashlib.sha256(open(released_encoder(), "rb").read()).hexdigest() == digest  # untouched
    # evaluation and inference rebuild the same network from the weights alone (no --linear_probe given)
    args = ["--bundle_root", str(tmp_path), "--model_size", "tiny", "--image_size", "128", "--batch_size", "16"]
    run_bundle(
        "spcxr_cxr_classification",
        "evaluating",
        "--config_file",
        "['configs/train.json','configs/evaluate.json']",
        *args,
    )
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["n"] == 60
    assert spcxr(["predict", sample_dicom(), "--bundle", str(BUNDLE), "--set", f"ckpt_dir={tmp_path / 'models'}"]) == 0
    probs = json.loads(capsys.readouterr().out)[sample_dicom()]
    assert sum(probs[c] for c in ("covid", "pneumonia", "normal")) == pytest.approx(1.0, abs=1e-4)


def test_training_on_a_folder_with_one_broken_file_ends_in_one_line_naming_it(tmp_path, dicom_dir):
    import shutil

    from spcxr_monai.data import sample_dir

    data = tmp_path / "cxrs"
    shutil.copytree(sample_dir(), data)
    images = sorted(data.glob("*/images"))[0]
    broken = images / "broken.dcm"
    shutil.copy(dicom_dir / "966_broken_stream.dcm", broken)  # a JPEG 2000 stream cut short
    masks = images.parent / "lung_masks"
    shutil.copy(sorted(masks.iterdir())[0], masks / "broken.dcm")
    proc = run_bundle(
        "spcxr_cxr_classification",
        "training",
        "--config_file",
        "configs/train.json",
        "--bundle_root",
        str(tmp_path / "run"),
        "--dataset_dir",
        str(data),
        "--epochs",
        "1",
        *TINY,
        check=False,
    )
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()
    error = [line for line in last if line.startswith("error: ")]
    assert len(error) == 1 and error[0].startswith(f"error: {broken}: pixel data could not be decoded")
    assert "Traceback" not in proc.stderr and len(last) < 15, proc.stderr[-2000:]
    assert not (tmp_path / "run" / "models").exists() or not any((tmp_path / "run" / "models").iterdir())
