"""Where the data is: the embedded sample and the shared real-data folder."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SAMPLE_ROOT", "sample_dicom", "sample_dir", "shared_data_root"]

SAMPLE_ROOT = Path(__file__).parent / "sample"


def sample_dir() -> str:
    """Folder of the embedded sample: ``<class>/images`` and ``<class>/lung_masks`` for 3 classes."""
    return str(SAMPLE_ROOT / "cxr")


def sample_dicom() -> str:
    """One embedded real DICOM (CR, MONOCHROME1, JPEG 2000)."""
    return str(SAMPLE_ROOT / "dicom" / "RG1_J2KI.dcm")


def shared_data_root() -> str:
    """The shared real-data folder: ``$SPCXR_DATA``, else ``shared/data`` beside this checkout (its
    ``../shared/data``), else ``../shared/data`` from the working directory."""
    if os.environ.get("SPCXR_DATA"):
        return os.environ["SPCXR_DATA"]
    beside_checkout = Path(__file__).resolve().parents[3] / "shared" / "data"
    return str(beside_checkout) if beside_checkout.is_dir() else os.path.join("..", "shared", "data")
