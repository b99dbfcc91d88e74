"""Lung segmentation bundle: checks, a short real training, per-image evaluation, inference at original size."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from bundle_helpers import BUNDLES, run_bundle
from PIL import Image
from scipy import ndimage
from skimage import measure

from spcxr_monai.data import sample_dicom, sample_dir
from spcxr_monai.networks import create_gmml_vit

BUNDLE = BUNDLES / "spcxr_lung_segmentation"
TINY = ["--model_size", "tiny", "--image_size", "32", "--batch_size", "8", "--feature_size", "8"]


@pytest.mark.slow
def test_train_evaluate_and_infer(tmp_path):
    torch.manual_seed(0)
    torch.save(create_gmml_vit("tiny", img_size=32).state_dict(), tmp_path / "gmml.pt")
    log = run_bundle(
        "spcxr_lung_segmentation",
        "training",
        "--config_file",
        "configs/train.json",
        "--bundle_root",
        str(tmp_path),
        "--epochs",
        "2",
        "--pretrained_checkpoint",
        str(tmp_path / "gmml.pt"),
        "--learning_rate",
        "0.001",
        *TINY,
    )
    assert "encoder initialised from" in log.stdout + log.stderr
    assert (tmp_path / "models" / "model.pt").is_file()

    run_bundle(
        "spcxr_lung_segmentation",
        "evaluating",
        "--config_file",
        "['configs/train.json','configs/evaluate.json']",
        "--bundle_root",
        str(tmp_path),
        *TINY[:-2],  # the decoder's width is read off the weights (8), not repeated
    )
    with open(tmp_path / "eval" / "val_mean_dice_raw.csv") as f:
        dice = {r["filename"]: float(r["mean"]) for r in csv.DictReader(f)}
    assert len(dice) == 60 and all(0.0 <= d <= 1.0 for d in dice.values())
    assert np.mean(list(dice.values())) > 0.3  # lungs are large: even 2 epochs find them roughly
    with open(tmp_path / "eval" / "val_hd95_raw.csv") as f:
        assert len(list(csv.DictReader(f))) == 60
    # the same predictions at the masks' own size (256 px: probabilities resized, argmax there, the reference
    # mask read untouched): per image, close to the model grid's Dice; HD95 in pixels of 256 (PNGs: no spacing)
    with open(tmp_path / "eval" / "native_mean_dice_raw.csv") as f:
        native = {r["filename"]: float(r["mean"]) for r in csv.DictReader(f)}
    assert native.keys() == dice.keys()
    assert abs(np.mean(list(native.values())) - np.mean(list(dice.values()))) < 0.05
    assert max(abs(native[k] - dice[k]) for k in dice) < 0.2
    with open(tmp_path / "eval" / "native_hd95_raw.csv") as f:
        native_hd = [float(r["mean"]) for r in csv.DictReader(f)]
    with open(tmp_path / "eval" / "val_hd95_raw.csv") as f:
        grid_hd = [float(r["mean"]) for r in csv.DictReader(f)]
    assert len(native_hd) == 60
    # a 32 px grid's pixel is 8 of the mask's: native distances are several times the grid's
    assert np.nanmean(native_hd) > 3 * np.nanmean(grid_hd)
    assert len(list((tmp_path / "eval" / "overlays").glob("*_overlay.png"))) == 20

    png = sorted((Path(sample_dir()) / "normal" / "images").glob("*.png"))[0]
    inputs = tmp_path / "inputs"  # two patients' files with the same name, and a DICOM
    for patient in ("p1", "p2"):
        (inputs / patient).mkdir(parents=True)
    shutil.copy(png, inputs / "p1" / "IM-0001.png")
    flipped = np.asarray(Image.open(png))[:, ::-1]
    Image.fromarray(np.ascontiguousarray(flipped)).save(inputs / "p2" / "IM-0001.png")
    shutil.copy(sample_dicom(), inputs / "RG1_J2KI.dcm")
    files = [str(inputs / "p1" / "IM-0001.png"), str(inputs / "p2" / "IM-0001.png"), str(inputs / "RG1_J2KI.dcm")]
    run_bundle(
        "spcxr_lung_segmentation",
        "inference",
        "--config_file",
        "configs/inference.json",
        "--bundle_root",
        str(tmp_path),
        "--input_files",
        repr(files),
        "--model_size",
        "tiny",
        "--image_size",
        "32",
        "--feature_size",
        "8",
    )
    out = tmp_path / "predictions"
    dicom_mask = np.asarray(Image.open(out / "RG1_J2KI_lungs.png"))
    assert dicom_mask.shape == (1955, 1841)  # rows x cols of the DICOM: restored size, not transposed
    assert set(np.unique(dicom_mask)) <= {0, 255}
    # the argmax is taken at the radiograph's size on smoothly resized probabilities: the outline moves from
    # row to row, not in stairs one model pixel (1955 / 32 = 61 rows here) tall
    rows = [r for r in range(dicom_mask.shape[0]) if dicom_mask[r].any()]
    left_edge = np.array([np.argmax(dicom_mask[r] > 0) for r in rows])
    assert len(rows) > 100 and np.mean(np.diff(left_edge) != 0) > 0.2
    # same file name in two folders: two masks, each in its input's folder, each of its own image
    first, second = (np.asarray(Image.open(out / p / "IM-0001_lungs.png")) for p in ("p1", "p2"))
    assert first.shape == second.shape == (256, 256)
    assert not np.array_equal(first, second)
    # the input gate's verdict on every input beside the masks: all three are upright CXRs (one mirrored)
    gate = json.loads((out / "gate.json").read_text())
    assert sorted(gate) == sorted(files) and all(
        v["ok"] and v["scores"]["template_correlation"] > 0.5 for v in gate.values()
    )
    # cleaned (clean_masks, the default): at most the two lungs, no hole inside them
    for mask in (first, second, dicom_mask):
        assert measure.label(mask > 0).max() <= 2
        assert np.array_equal(ndimage.binary_fill_holes(mask > 0, np.ones((3, 3))), mask > 0)  # as MONAI's FillHoles

    # the DICOM input also gets a DICOM SEG of the same mask, referencing its source; the PNG none
    seg = pydicom.dcmread(out / "RG1_J2KI_lungs_seg.dcm")
    source = pydicom.dcmread(sample_dicom(), stop_before_pixels=True)
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert seg.StudyInstanceUID == source.StudyInstanceUID and seg.PatientID == source.PatientID
    referenced = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
    assert referenced == source.SOPInstanceUID
    np.testing.assert_array_equal(seg.pixel_array.astype(bool), dicom_mask > 0)
    assert sorted(p.name for p in out.glob("*.dcm")) == ["RG1_J2KI_lungs_seg.dcm"]


def test_validation_cleans_the_argmax_before_one_hot():
    """The metrics and the overlay writer get a one-hot of the cleaned mask: a filled hole is lung in channel 1
    and not background in channel 0 (the overlay writer's argmax would show it unfilled)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "train.json"))
    post = parser.get_parsed_content("validate#postprocessing")
    lungs = torch.zeros(1, 32, 32)
    lungs[0, 4:28, 3:13] = lungs[0, 4:28, 19:29] = 1
    noisy = lungs.clone()
    noisy[0, 10:13, 6:9] = 0  # a hole
    noisy[0, 29:31, 15:17] = 1  # a blob
    logits = torch.cat([1 - noisy, noisy]) * 4 - 2  # (2, H, W): the noisy mask's argmax
    out = post({"pred": logits, "label": lungs.clone()})
    pred = torch.as_tensor(out["pred"])
    assert pred.shape == (2, 32, 32) and torch.equal(pred.sum(0), torch.ones(32, 32))
    assert torch.equal(pred[1], lungs[0]) and torch.equal(torch.as_tensor(out["label"])[1], lungs[0])
