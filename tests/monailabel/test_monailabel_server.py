"""End to end: a real MONAI Label server on loopback serving the bundles trained here, on real CXRs.

The server runs in the MONAI Label environment (``bash monailabel_app/install.sh`` makes
``.venv-label``; ``$SPCXR_MONAILABEL_VENV`` points elsewhere). Without it the test is skipped, except
under CI (``CI=true``), where ``.ci/run`` makes it and a missing one fails.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spcxr_monai.data import sample_dicom

from bundle_helpers import BUNDLES, run_bundle

pytestmark = pytest.mark.monailabel

REPO_ROOT = Path(__file__).resolve().parents[2]
APP = REPO_ROOT / "monailabel_app"
SIZES = {"model_size": "tiny", "image_size": 64, "feature_size": 8}
TRAIN_PER_CLASS = 80
# held-out studies: COVID-QU-Ex val images (never trained on) of each class, and a real DICOM
STUDIES = {"covid": 2, "pneumonia": 1, "normal": 2}


def _label_python() -> Path:
    venv = Path(os.environ.get("SPCXR_MONAILABEL_VENV", REPO_ROOT / ".venv-label"))
    python = venv / "bin" / "python"
    if not python.exists():
        message = f"no MONAI Label environment at {venv} (bash monailabel_app/install.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return python


def _size_args() -> list[str]:
    return [x for k, v in SIZES.items() for x in (f"--{k}", str(v))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _subset(src: Path, dst: Path, per_class: int) -> Path:
    """Symlinks to the first ``per_class`` images (and lung masks) of each class of ``src``."""
    for cls_dir in sorted(p for p in src.iterdir() if p.is_dir()):
        for name in sorted(os.listdir(cls_dir / "images"))[:per_class]:
            for sub in ("images", "lung_masks"):
                (dst / cls_dir.name / sub).mkdir(parents=True, exist_ok=True)
                (dst / cls_dir.name / sub / name).symlink_to(cls_dir / sub / name)
    return dst


def _post(url: str, timeout: float = 120) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=timeout) as r:
        return r.read()


@pytest.fixture(scope="module")
def served(tmp_path_factory, shared_data):
    """Train both bundles briefly on real images, then start the server; yields (url, work dir)."""
    python = _label_python()
    work = tmp_path_factory.mktemp("monailabel")
    bundles = {}
    for name in ("spcxr_lung_segmentation", "spcxr_cxr_classification"):
        shutil.copytree(BUNDLES / name / "configs", work / name / "configs")
        bundles[name] = work / name
    sizes = _size_args()
    train = _subset(shared_data / "covid-qu-ex" / "train", work / "train", TRAIN_PER_CLASS)
    run_bundle(
        "spcxr_lung_segmentation", "training", "--config_file", "configs/train.json",
        "--bundle_root", str(bundles["spcxr_lung_segmentation"]), "--dataset_dir", str(train),
        "--epochs", "8", "--batch_size", "16", "--learning_rate", "0.001", *sizes,
    )
    run_bundle(
        "spcxr_cxr_classification", "training", "--config_file", "configs/train.json",
        "--bundle_root", str(bundles["spcxr_cxr_classification"]), "--dataset_dir", str(train),
        "--epochs", "2", "--model_size", "tiny", "--image_size", "64",
    )

    studies = work / "studies"
    studies.mkdir()
    for cls, n in STUDIES.items():
        for name in sorted(os.listdir(shared_data / "covid-qu-ex" / "val" / cls / "images"))[:n]:
            shutil.copy(shared_data / "covid-qu-ex" / "val" / cls / "images" / name, studies / name)
    shutil.copy(sample_dicom(), studies / "RG1_J2KI.dcm")

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(work / "server.log", "w")
    server = subprocess.Popen(
        [
            str(python), "-m", "monailabel.main", "start_server", "--app", str(APP), "--studies", str(studies),
            "--conf", "bundles", ",".join(str(p) for p in bundles.values()),
            "--conf", "bundle_overrides", json.dumps(SIZES), "--host", "127.0.0.1", "--port", str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MONAI_LABEL_SESSION_PATH": str(work / "sessions"), "PYTHONWARNINGS": "ignore"},
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            if server.poll() is not None:
                pytest.fail(f"MONAI Label server exited ({server.returncode}):\n{(work / 'server.log').read_text()[-4000:]}")
            try:
                urllib.request.urlopen(f"{url}/info/", timeout=5).read()
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    pytest.fail(f"MONAI Label server not up in 240 s:\n{(work / 'server.log').read_text()[-4000:]}")
                time.sleep(1)
        yield url, work
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


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
            png = _post(f"{url}/infer/lung_segmentation?image={Path(name).stem}&output=image")
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
        "spcxr_lung_segmentation", "inference", "--config_file", "configs/inference.json",
        "--bundle_root", str(work / "spcxr_lung_segmentation"), "--input_files", repr(inputs),
        *_size_args(),
    )
    for name in names:
        bundle_mask = np.asarray(Image.open(work / "spcxr_lung_segmentation" / "predictions" / f"{Path(name).stem}_lungs.png")) > 0
        served_mask = np.asarray(Image.open(work / f"served_{name}")) > 0
        assert np.mean(bundle_mask == served_mask) > 0.995, name


def test_dicom_study_gets_a_mask_of_its_own_size(served):
    url, work = served
    (work / "served_dicom.png").write_bytes(_post(f"{url}/infer/lung_segmentation?image=RG1_J2KI&output=image"))
    mask = np.asarray(Image.open(work / "served_dicom.png"))
    assert mask.shape == (1955, 1841)  # rows x cols of the DICOM
    assert set(np.unique(mask)) <= {0, 1} and mask.any()


def test_classification_returns_probabilities_of_the_three_classes(served):
    url, _ = served
    result = json.loads(_post(f"{url}/infer/cxr_classification?image=RG1_J2KI&output=json"))
    scores = {p["label"]: p["score"] for p in result["prediction"]}
    assert set(scores) == {"covid", "pneumonia", "normal"}
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-4)
    assert all(0.0 <= s <= 1.0 for s in scores.values())


def test_unknown_image_is_an_error_and_the_server_keeps_serving(served):
    url, _ = served
    with pytest.raises(urllib.error.HTTPError) as err:
        _post(f"{url}/infer/lung_segmentation?image=no_such_study&output=image")
    assert err.value.code >= 400
    assert json.loads(urllib.request.urlopen(f"{url}/info/", timeout=30).read())["name"] == "spcxr-monai"


def test_the_app_refuses_to_serve_beyond_this_machine_without_authentication(tmp_path):
    python = _label_python()
    studies = tmp_path / "studies"
    studies.mkdir()
    shutil.copy(sample_dicom(), studies / "RG1_J2KI.dcm")
    port = _free_port()
    command = [str(python), "-m", "monailabel.main", "start_server", "--app", str(APP), "--studies", str(studies),
               "--port", str(port)]  # no --host: MONAI Label itself would bind 0.0.0.0
    env = {**os.environ, "MONAI_LABEL_SESSION_PATH": str(tmp_path / "sessions"), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    log = proc.stdout + proc.stderr
    assert "refusing to serve on '0.0.0.0'" in log and "--host 127.0.0.1" in log, log[-3000:]
    assert proc.returncode != 0
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/info/", timeout=5)
