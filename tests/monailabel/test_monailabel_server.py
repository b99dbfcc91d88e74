"""End to end: a real MONAI Label server on loopback serving the bundles trained here, on real CXRs.

The server runs in the MONAI Label environment (``bash monailabel_app/install.sh`` makes
``.venv-label``; ``$SPCXR_MONAILABEL_VENV`` points elsewhere). Without it the test is skipped, except
under CI (``CI=true``), where ``.ci/run`` makes it and a missing one fails.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import orthanc_pacs as pacs
import pydicom
import pytest
from bundle_helpers import run_bundle
from label_server import APP, label_python, pacs_server, post, put_label, server, size_args, with_new_uids
from PIL import Image
from processes import free_port

from spcxr_monai.data import sample_dicom

pytestmark = pytest.mark.monailabel

# held-out studies: COVID-QU-Ex val images (never trained on) of each class, and a real DICOM
STUDIES = {"covid": 2, "pneumonia": 1, "normal": 2}


@pytest.fixture(scope="module")
def served(trained, shared_data):
    """The server over a folder of held-out studies; yields (url, work dir)."""
    work, bundles = trained
    studies = work / "studies"
    studies.mkdir()
    for cls, n in STUDIES.items():
        for name in sorted(os.listdir(shared_data / "covid-qu-ex" / "val" / cls / "images"))[:n]:
            shutil.copy(shared_data / "covid-qu-ex" / "val" / cls / "images" / name, studies / name)
    shutil.copy(sample_dicom(), studies / "RG1_J2KI.dcm")
    with server(str(studies), bundles, work, "server") as (url, _):
        yield url, work


def test_info_lists_both_bundles_and_the_studies(served):
    url, _ = served
    info = json.loads(urllib.request.urlopen(f"{url}/info/", timeout=30).read())
    models = info["models"]
    assert models["lung_segmentation"]["type"] == "segmentation"
    assert models["lung_segmentation"]["labels"] == {"lungs": 1}
    assert models["cxr_classification"]["type"] == "classification"
    assert models["cxr_classification"]["labels"] == {"covid": 0, "pneumonia": 1, "normal": 2}
    assert info["datastore"]["total"] == sum(STUDIES.values()) + 1  # the PNGs and the DICOM


def test_served_lung_masks_match_the_ground_truth(served, shared_data):
    url, work = served
    dice = {}
    for cls, n in STUDIES.items():
        for name in sorted(os.listdir(shared_data / "covid-qu-ex" / "val" / cls / "images"))[:n]:
            png = post(f"{url}/infer/lung_segmentation?image={Path(name).stem}&output=image")
            (work / f"served_{name}").write_bytes(png)
            mask = np.asarray(Image.open(work / f"served_{name}"))
            truth = np.asarray(Image.open(shared_data / "covid-qu-ex" / "val" / cls / "lung_masks" / name)) > 0
            assert mask.shape == truth.shape == (256, 256)  # restored to the input's size, not transposed
            assert set(np.unique(mask)) <= {0, 1}  # label indices, as MONAI Label clients expect
            dice[name] = 2 * np.logical_and(mask > 0, truth).sum() / ((mask > 0).sum() + truth.sum())
    assert min(dice.values()) > 0.6, dice
    assert np.mean(list(dice.values())) > 0.8, dice

    # the server gives the same masks as the bundle's own inference (torch 2.14 there, 2.13 here)
    names = sorted(dice)
    inputs = [str(work / "studies" / n) for n in names]
    run_bundle(
        "spcxr_lung_segmentation",
        "inference",
        "--config_file",
        "configs/inference.json",
        "--bundle_root",
        str(work / "spcxr_lung_segmentation"),
        "--input_files",
        repr(inputs),
        *size_args(),
    )
    for name in names:
        bundle_mask = (
            np.asarray(Image.open(work / "spcxr_lung_segmentation" / "predictions" / f"{Path(name).stem}_lungs.png"))
            > 0
        )
        served_mask = np.asarray(Image.open(work / f"served_{name}")) > 0
        assert np.mean(bundle_mask == served_mask) > 0.995, name


def test_dicom_study_gets_a_mask_of_its_own_size(served):
    url, work = served
    (work / "served_dicom.png").write_bytes(post(f"{url}/infer/lung_segmentation?image=RG1_J2KI&output=image"))
    mask = np.asarray(Image.open(work / "served_dicom.png"))
    assert mask.shape == (1955, 1841)  # rows x cols of the DICOM
    assert set(np.unique(mask)) <= {0, 1} and mask.any()


def test_classification_returns_probabilities_of_the_three_classes(served):
    url, _ = served
    result = json.loads(post(f"{url}/infer/cxr_classification?image=RG1_J2KI&output=json"))
    scores = {p["label"]: p["score"] for p in result["prediction"]}
    assert set(scores) == {"covid", "pneumonia", "normal"}
    # the input gate's verdict comes with the answer: a CR chest PA passes it
    assert result["gate"]["ok"] is True and result["gate"]["scores"]["template_correlation"] > 0.5
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-4)
    assert all(0.0 <= s <= 1.0 for s in scores.values())
    # calibrated after training: the screening verdict at the model's threshold, and where it came from
    screening = result["screening"]
    assert screening["abnormal_score"] == pytest.approx(1 - scores["normal"], abs=1e-5)
    assert screening["verdict"] == ("abnormal" if screening["abnormal_score"] >= screening["threshold"] else "normal")
    assert "internal validation split" in screening["fitted_on"]


def test_unknown_image_is_an_error_and_the_server_keeps_serving(served):
    url, _ = served
    with pytest.raises(urllib.error.HTTPError) as err:
        post(f"{url}/infer/lung_segmentation?image=no_such_study&output=image")
    assert err.value.code >= 400
    assert json.loads(urllib.request.urlopen(f"{url}/info/", timeout=30).read())["name"] == "spcxr-monai"


def test_the_app_refuses_to_serve_beyond_this_machine_without_authentication(tmp_path):
    python = label_python()
    studies = tmp_path / "studies"
    studies.mkdir()
    shutil.copy(sample_dicom(), studies / "RG1_J2KI.dcm")
    port = free_port()
    command = [
        str(python),
        "-m",
        "monailabel.main",
        "start_server",
        "--app",
        str(APP),
        "--studies",
        str(studies),
        "--port",
        str(port),
    ]  # no --host: MONAI Label itself would bind 0.0.0.0
    env = {**os.environ, "MONAI_LABEL_SESSION_PATH": str(tmp_path / "sessions"), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    log = proc.stdout + proc.stderr
    assert "refusing to serve on '0.0.0.0'" in log and "--host 127.0.0.1" in log, log[-3000:]
    assert proc.returncode != 0
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/info/", timeout=5)


# --- MONAI Label over a DICOMweb PACS (Orthanc) ---


@pytest.fixture(scope="module")
def pacs_served(trained, dicom_dir, tmp_path_factory):
    """Orthanc holding the shared real DICOMs and the app served from its DICOMweb endpoint.

    Yields (app url, Orthanc url, {file name: its DICOM header as uploaded})."""
    reason = pacs.missing()
    if reason:
        pytest.skip(reason)
    files = {name: (dicom_dir / name).read_bytes() for name in ("RG1_J2KI.dcm", "966_fixed.dcm")}
    files["966_broken_stream.dcm"] = with_new_uids(dicom_dir / "966_broken_stream.dcm")
    with pacs_server(trained, files, tmp_path_factory.mktemp("orthanc"), "pacs_server") as served:
        yield served


def test_pacs_studies_are_listed_segmented_and_the_seg_is_stored_back(pacs_served, tmp_path):
    url, orthanc_url, uploaded = pacs_served
    series = {name: str(ds.SeriesInstanceUID) for name, ds in uploaded.items()}
    stats = pacs.get_json(f"{url}/datastore/")  # MONAI Label lists the PACS's CR and DX series
    assert (stats["total"], stats["completed"]) == (len(series), 0), stats
    first = json.loads(post(f"{url}/activelearning/first"))["id"]  # the next study to label, from the PACS
    assert first in series.values()
    # the viewer: MONAI Label's bundled OHIF, reading the PACS through the server's DICOMweb proxy
    assert b"<html" in pacs.get_bytes(f"{url}/ohif/").lower()
    studies = pacs.get_json(f"{url}/proxy/dicom/qido/studies")
    assert {s["0020000D"]["Value"][0] for s in studies} == {str(ds.StudyInstanceUID) for ds in uploaded.values()}

    source = uploaded["RG1_J2KI.dcm"]
    image_id = series["RG1_J2KI.dcm"]
    png = post(f"{url}/infer/lung_segmentation?image={image_id}&output=image")
    (tmp_path / "mask.png").write_bytes(png)
    mask = np.asarray(Image.open(tmp_path / "mask.png"))
    assert mask.shape == (source.Rows, source.Columns) == (1955, 1841)
    assert 0.1 < (mask > 0).mean() < 0.7  # lungs, not nothing and not everything

    saved = put_label(f"{url}/datastore/label?image={image_id}&tag=final", png)
    assert saved["image"] == image_id

    segs = pacs.get_json(f"{orthanc_url}/dicom-web/series?Modality=SEG")
    assert len(segs) == 1, segs
    seg_study = segs[0]["0020000D"]["Value"][0]
    seg_series = segs[0]["0020000E"]["Value"][0]
    assert seg_study == str(source.StudyInstanceUID)  # stored in the radiograph's study
    seg_in_orthanc = next(
        s
        for s in pacs.get_json(f"{orthanc_url}/series?expand")
        if s["MainDicomTags"]["SeriesInstanceUID"] == seg_series
    )
    seg = pydicom.dcmread(io.BytesIO(pacs.get_bytes(f"{orthanc_url}/instances/{seg_in_orthanc['Instances'][0]}/file")))
    assert seg.Modality == "SEG"
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == source.SeriesInstanceUID
    assert referenced.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert seg.SegmentSequence[0].SegmentLabel == "Lungs"
    stored = seg.pixel_array.reshape(source.Rows, source.Columns)
    assert np.array_equal(stored > 0, mask > 0)  # the mask the server predicted, pixel for pixel
    assert pacs.get_json(f"{url}/datastore/")["completed"] == 1  # MONAI Label sees the SEG as the label


def test_a_broken_pacs_image_is_a_clear_error_and_the_server_keeps_serving(pacs_served):
    url, _, uploaded = pacs_served
    with pytest.raises(urllib.error.HTTPError) as err:
        post(f"{url}/infer/lung_segmentation?image={uploaded['966_broken_stream.dcm'].SeriesInstanceUID}&output=image")
    assert err.value.code == 422  # the input, not the server, is at fault
    detail = json.loads(err.value.read())["detail"]
    assert "pixel data could not be decoded (JPEG 2000" in detail, detail
    assert json.loads(urllib.request.urlopen(f"{url}/info/", timeout=30).read())["name"] == "spcxr-monai"
