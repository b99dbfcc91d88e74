"""spcxr prepare: every file accounted for, bad files rejected with their reason, resumable after kill -9."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from spcxr_monai.cli import main as spcxr
from spcxr_monai.data import make_unlabelled_datalist
from spcxr_monai.data.prepare import MANIFEST_FIELDS, prepare_dataset, read_manifest
from spcxr_monai.transforms import LoadCXR


@pytest.fixture(scope="module")
def archive(tmp_path_factory, dicom_dir, sample) -> Path:
    """A mixed tree: the shared DICOMs (one broken), PNGs, pydicom's CT and MR, a lateral view, a truncated
    DICOM, an empty file and a text file."""
    root = tmp_path_factory.mktemp("archive")
    shutil.copytree(dicom_dir, root / "dicom")
    (root / "png").mkdir()
    for path in sorted(sample.rglob("images/*.png"))[:12]:
        shutil.copy(path, root / "png" / path.name)
    other = root / "other"
    other.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(get_testdata_file(name), other / name)
    ds = pydicom.dcmread(dicom_dir / "RG1_JLSN.dcm")
    ds.ViewPosition = "LL"
    ds.save_as(other / "lateral.dcm")
    data = (dicom_dir / "RG1_J2KI.dcm").read_bytes()
    (other / "truncated.dcm").write_bytes(data[: len(data) // 2])
    (other / "empty.dcm").write_bytes(b"")
    (other / "notes.txt").write_text("not an image")
    return root


def _manifest(out: Path) -> dict[str, dict]:
    with open(out / "manifest.csv", newline="") as f:
        return {Path(r["source"]).name: r for r in csv.DictReader(f)}


def test_every_file_is_accounted_for_and_bad_files_are_rejected_with_their_reason(archive, tmp_path, capsys):
    out = tmp_path / "prepared"
    assert spcxr(["prepare", str(archive), str(out), "--size", "128", "--workers", "2", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = _manifest(out)
    assert summary["files"] == len(rows) == 4 + 12 + 6 and summary["status"] == {"ok": 15, "rejected": 7}
    assert list(csv.reader(open(out / "manifest.csv")))[0] == list(MANIFEST_FIELDS)
    reasons = {name: r["reason"] for name, r in rows.items() if r["status"] == "rejected"}
    assert "pixel data could not be decoded" in reasons["966_broken_stream.dcm"]
    assert reasons["CT_small.dcm"].startswith("modality CT") and reasons["MR_small.dcm"].startswith("modality MR")
    assert reasons["lateral.dcm"].startswith("view position LL is not frontal")
    assert "truncated" in reasons["truncated.dcm"] and reasons["empty.dcm"] == "file is empty"
    assert reasons["notes.txt"].startswith("not an image file")
    assert all("\n" not in r for r in reasons.values())
    # the header's fields, empty where it gives nothing
    dx = rows["966_fixed.dcm"]
    assert (dx["modality"], dx["view_position"], dx["rows"], dx["columns"]) == ("DX", "PA", "2128", "2000")
    assert dx["photometric_interpretation"] == "MONOCHROME1" and dx["sop_uid"] and dx["bits_stored"] == "12"
    png = rows[sorted(n for n in rows if n.endswith(".png"))[0]]
    assert png["modality"] == "" and png["window"] == "data range" and png["patient_id"]
    # images: 8-bit grey, longer side 128, aspect kept, the reader's picture (air dark, not flipped)
    for _name, row in rows.items():
        if row["status"] == "ok":
            image = np.asarray(Image.open(out / row["output"]))
            assert image.dtype == np.uint8 and max(image.shape) == 128 and image.min() == 0 and image.max() == 255
    image = np.asarray(Image.open(out / dx["output"]), dtype=np.float32)
    assert image.shape == (128, round(128 * 2000 / 2128))
    reference = np.asarray(
        Image.fromarray(LoadCXR()(archive / "dicom" / "966_fixed.dcm").numpy()[0]).resize(image.shape[::-1], Image.BOX)
    )
    assert np.corrcoef(image.ravel(), reference.ravel())[0, 1] > 0.99
    # nothing left half-written
    assert not list(out.rglob("*.tmp"))


def test_a_rerun_skips_what_is_done_and_picks_up_new_files(archive, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(archive / "png", src)
    out = tmp_path / "out"
    first = prepare_dataset(src, out, size=64)
    manifest = (out / "manifest.csv").read_bytes()
    assert first["processed"] == 12
    again = prepare_dataset(src, out, size=64)
    assert again["processed"] == 0 and again["done_before"] == 12
    assert (out / "manifest.csv").read_bytes() == manifest
    shutil.copy(archive / "dicom" / "RG1_J2KI.dcm", src / "new.dcm")
    more = prepare_dataset(src, out, size=64)
    assert more["processed"] == 1 and more["status"] == {"ok": 13}
    # a prepared folder is a pretraining dataset: the manifest's images and patients
    datalist = make_unlabelled_datalist(out, val_fraction=0)
    assert sorted(i["image"] for i in datalist["training"]) == sorted(r["output"] for r in read_manifest(out))
    patients = {i["patient"] for i in datalist["training"]}
    assert Path(sorted(src.glob("*.png"))[0]).stem in patients  # from the file name
    assert pydicom.dcmread(src / "new.dcm").PatientID in patients  # from the header


def test_near_duplicates_are_rejected_when_asked(archive, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(archive / "png", src)
    first = sorted(src.glob("*.png"))[0]
    Image.open(first).resize((200, 200)).save(src / "zz_copy.png")  # a resized copy of the first image
    summary = prepare_dataset(src, tmp_path / "out", size=64, dedup_threshold=0.95)
    rows = _manifest(tmp_path / "out")
    assert summary["status"] == {"ok": 12, "rejected": 1}
    assert rows["zz_copy.png"]["reason"].startswith(f"near-duplicate of {first}")
    assert not (tmp_path / "out" / "images" / "zz_copy.png").exists()


def _images(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "images").rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_killed_at_any_point_a_rerun_ends_as_an_uninterrupted_run(archive, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(archive / "png", src / "png")
    shutil.copytree(archive / "other", src / "other")
    shutil.copy(archive / "dicom" / "RG1_J2KI.dcm", src / "RG1_J2KI.dcm")
    reference = tmp_path / "reference"
    prepare_dataset(src, reference, size=96)
    expected_manifest, expected_images = (reference / "manifest.csv").read_bytes(), _images(reference)
    command = [sys.executable, "-m", "spcxr_monai.cli", "prepare", str(src), "OUT", "--size", "96", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for rows_before_kill in (1, 4, 9, 15):
        out = tmp_path / f"killed_after_{rows_before_kill}"
        proc = subprocess.Popen([*command[:-4], str(out), *command[-3:]], env=env, stdout=subprocess.DEVNULL)
        journal = out / "manifest.jsonl"
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if journal.is_file() and len(journal.read_bytes().splitlines()) >= rows_before_kill:
                break
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        subprocess.run([*command[:-4], str(out), *command[-3:]], env=env, check=True, stdout=subprocess.DEVNULL)
        assert (out / "manifest.csv").read_bytes().replace(bytes(out), bytes(reference)) == expected_manifest
        assert _images(out) == expected_images, rows_before_kill
        assert not list(out.rglob("*.tmp"))
