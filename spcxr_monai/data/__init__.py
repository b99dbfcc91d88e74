"""Datalists, readers and the embedded sample."""

from __future__ import annotations

import os
from pathlib import Path

from spcxr_monai.data.cxr_reader import CXRReader
from spcxr_monai.data.datalist import (
    make_datalist,
    make_unlabelled_datalist,
    patient_id_from_name,
    read_csv_datalist,
    scan_class_folders,
    split_by_patient,
)
from spcxr_monai.data.dicom import read_dicom_cxr
from spcxr_monai.data.errors import CXRInputError

SAMPLE_ROOT = Path(__file__).parent / "sample"


def sample_dir() -> str:
    """Folder of the embedded sample: ``<class>/images`` and ``<class>/lung_masks`` for 3 classes."""
    return str(SAMPLE_ROOT / "cxr")


def sample_dicom() -> str:
    """One embedded real DICOM (CR, MONOCHROME1, JPEG 2000)."""
    return str(SAMPLE_ROOT / "dicom" / "RG1_J2KI.dcm")


def shared_data_root() -> str:
    """The shared real-data folder: ``$SPCXR_DATA``, else ``../shared/data`` from the working directory."""
    return os.environ.get("SPCXR_DATA", os.path.join("..", "shared", "data"))


__all__ = [
    "CXRReader",
    "CXRInputError",
    "make_datalist",
    "make_unlabelled_datalist",
    "patient_id_from_name",
    "read_csv_datalist",
    "read_dicom_cxr",
    "sample_dir",
    "sample_dicom",
    "scan_class_folders",
    "shared_data_root",
    "split_by_patient",
]
