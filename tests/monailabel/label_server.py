"""The MONAI Label side of the end-to-end tests: the app's environment, bundles trained briefly on real
images, a server of the app on loopback, and the requests a viewer sends it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from bundle_helpers import BUNDLES, run_bundle
from processes import free_port, stop, wait_for_http
from pydicom.uid import generate_uid

REPO_ROOT = Path(__file__).resolve().parents[2]
APP = REPO_ROOT / "monailabel_app"
SIZES = {"model_size": "tiny", "image_size": 64, "feature_size": 8}
TRAIN_PER_CLASS = 80


def label_python() -> Path:
    """The MONAI Label environment's python; skips the test where it is missing, fails it under CI."""
    venv = Path(os.environ.get("SPCXR_MONAILABEL_VENV", REPO_ROOT / ".venv-label"))
    python = venv / "bin" / "python"
    if not python.exists():
        message = f"no MONAI Label environment at {venv} (bash monailabel_app/install.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return python


def size_args() -> list[str]:
    return [x for k, v in SIZES.items() for x in (f"--{k}", str(v))]


def _subset(src: Path, dst: Path, per_class: int) -> Path:
    """Symlinks to the first ``per_class`` images (and lung masks) of each class of ``src``."""
    for cls_dir in sorted(p for p in src.iterdir() if p.is_dir()):
        for name in sorted(os.listdir(cls_dir / "images"))[:per_class]:
            for sub in ("images", "lung_masks"):
                (dst / cls_dir.name / sub).mkdir(parents=True, exist_ok=True)
                (dst / cls_dir.name / sub / name).symlink_to(cls_dir / sub / name)
    return dst


def train_bundles(work: Path, shared_data: Path) -> dict[str, Path]:
    """Both bundles trained briefly (tiny ViT, 64 px) on 80 real images per class; {bundle name: folder}."""
    bundles = {}
    for name in ("spcxr_lung_segmentation", "spcxr_cxr_classification"):
        shutil.copytree(BUNDLES / name / "configs", work / name / "configs")
        bundles[name] = work / name
    sizes = size_args()
    train = _subset(shared_data / "covid-qu-ex" / "train", work / "train", TRAIN_PER_CLASS)
    run_bundle(
        "spcxr_lung_segmentation",
        "training",
        "--config_file",
        "configs/train.json",
        "--bundle_root",
        str(bundles["spcxr_lung_segmentation"]),
        "--dataset_dir",
        str(train),
        "--epochs",
        "8",
        "--batch_size",
        "16",
        "--learning_rate",
        "0.001",
        *sizes,
    )
    run_bundle(
        "spcxr_cxr_classification",
        "training",
        "--config_file",
        "configs/train.json",
        "--bundle_root",
        str(bundles["spcxr_cxr_classification"]),
        "--dataset_dir",
        str(train),
        "--epochs",
        "2",
        "--model_size",
        "tiny",
        "--image_size",
        "64",
    )
    return bundles


@contextlib.contextmanager
def server(
    studies: str, bundles: dict, work: Path, name: str, env: dict | None = None, args: tuple[str, ...] = ()
) -> Iterator[tuple[str, subprocess.Popen]]:
    """A MONAI Label server of the app on loopback over ``studies`` (a folder or a DICOMweb URL);
    yields (its URL, its process). ``args`` go to ``start_server`` (e.g. uvicorn's ``--workers``)."""
    python = label_python()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_file = work / f"{name}.log"
    log = open(log_file, "w")
    proc = subprocess.Popen(
        [
            str(python),
            "-m",
            "monailabel.main",
            "start_server",
            "--app",
            str(APP),
            "--studies",
            studies,
            "--conf",
            "bundles",
            ",".join(str(p) for p in bundles.values()),  # sizes: read off the weights
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "MONAI_LABEL_SESSION_PATH": str(work / f"{name}_sessions"),
            "PYTHONWARNINGS": "ignore",
            **(env or {}),
        },
    )
    try:
        wait_for_http(proc, f"{url}/info/", log_file, "MONAI Label server", 240)
        yield url, proc
    finally:
        stop(proc)
        log.close()


def post(url: str, timeout: float = 120) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=timeout) as r:
        return r.read()


def put_label(url: str, png: bytes) -> dict:
    """PUT a final label as OHIF's MONAI Label panel does (multipart form, field ``label``)."""
    boundary = "spcxr-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="label"; filename="label.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url, data=body, method="PUT", headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    with urllib.request.urlopen(request, timeout=300) as r:
        return json.loads(r.read())


def with_new_uids(path: Path) -> bytes:
    """The file with fresh study / series / SOP instance UIDs (the shared broken file shares its UIDs with
    966_fixed.dcm, so a PACS would take it for the same instance)."""
    ds = pydicom.dcmread(path)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


@contextlib.contextmanager
def pacs_server(
    trained: tuple[Path, dict], files: dict[str, bytes], folder: Path, name: str
) -> Iterator[tuple[str, str, dict]]:
    """Orthanc holding ``files`` (DICOM bytes by name) and the app served from its DICOMweb endpoint;
    yields (app url, Orthanc url, {file name: its DICOM header as uploaded})."""
    import orthanc_pacs as pacs

    work, bundles = trained
    with pacs.orthanc(folder) as orthanc_url:
        uploaded = {}
        for file_name, data in files.items():
            answer = pacs.upload(orthanc_url, data)
            assert answer["Status"] == "Success", answer
            uploaded[file_name] = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        env = {"MONAI_LABEL_DICOMWEB_CACHE_PATH": str(folder / "cache"), "MONAI_LABEL_DICOMWEB_READ_TIMEOUT": "60"}
        with server(f"{orthanc_url}/dicom-web", bundles, work, name, env) as (url, _):
            yield url, orthanc_url, uploaded
