"""Decoding a single-frame chest X-ray DICOM into display-ready grey values.

The steps follow DICOM PS3.3 C.11 (the grayscale pipeline): stored values -> Modality LUT
(RescaleSlope/Intercept or a Modality LUT Sequence) -> VOI LUT (a VOI LUT Sequence, else the first
WindowCenter/WindowWidth) -> presentation, where MONOCHROME1 is inverted so that air is dark, like
MONOCHROME2 and like every PNG in the training data.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from spcxr_monai.data.errors import CXRInputError

__all__ = ["read_dicom_cxr", "is_dicom_file", "pixel_spacing"]


def is_dicom_file(path: str | os.PathLike) -> bool:
    """True when the file carries the DICOM Part 10 preamble magic ``DICM`` at byte 128."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _decode_with_itk(path: str) -> np.ndarray:
    """Second decoder (GDCM inside SimpleITK) for transfer syntaxes pylibjpeg cannot handle."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.SetImageIO("GDCMImageIO")
    # GDCM applies the Modality LUT itself; the caller must not apply it twice.
    return np.squeeze(sitk.GetArrayFromImage(reader.Execute()))


def pixel_spacing(ds: Any) -> tuple[tuple[float, float], str]:
    """Row and column spacing in mm and the attribute it came from ("" when unknown or zero)."""
    for attr in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(attr)
        if value is not None and len(value) == 2 and all(float(v) > 0 for v in value):
            return (float(value[0]), float(value[1])), attr
    return (1.0, 1.0), ""


def read_dicom_cxr(path: str | os.PathLike, apply_voi: bool = True) -> tuple[np.ndarray, dict]:
    """Read one single-frame grey DICOM radiograph.

    Args:
        path: the DICOM file.
        apply_voi: apply the VOI LUT or the first window centre/width when the file has one.

    Returns:
        ``(array, meta)``: a float32 array of shape (rows, columns), row 0 at the top of the displayed
        image, air dark; ``meta`` holds ``spacing`` (row, column mm), ``spacing_source``,
        ``photometric_interpretation``, ``original_size`` (rows, columns), ``transfer_syntax``,
        ``modality``, ``voi_applied`` and ``decoder``.

    Raises:
        CXRInputError: the file is missing, empty, not DICOM, has no pixel data, is multi-frame or
            colour, or its pixel data could not be decoded. The message starts with the path.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        from pydicom.pixels import apply_modality_lut, apply_voi_lut
    except ImportError:  # pydicom 2.4, as pinned in the MONAI Label environment (monailabel_app/)
        from pydicom.pixel_data_handlers.util import apply_modality_lut, apply_voi_lut

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CXRInputError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise CXRInputError(path, "file is empty")
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, EOFError, OSError, ValueError) as e:
        raise CXRInputError(path, f"not a readable DICOM file ({e})") from e
    if "PixelData" not in ds:
        raise CXRInputError(path, "DICOM has no pixel data (PixelData is missing)")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise CXRInputError(path, f"multi-frame DICOM ({frames} frames) is not a single radiograph")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise CXRInputError(path, f"photometric interpretation {photometric} is not a grey radiograph")

    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    ts_name = getattr(ts, "name", str(ts))
    decoder = "pydicom"
    try:
        stored = ds.pixel_array
        value = apply_modality_lut(stored, ds)
    except Exception as first:  # every decoder plug-in failed: try GDCM before giving up
        try:
            value = _decode_with_itk(path).astype(np.float64)
            decoder = "gdcm"
        except Exception as second:
            raise CXRInputError(
                path, f"pixel data could not be decoded ({ts_name}): pydicom: {first}; GDCM: {second}"
            ) from first
    if value.ndim != 2:
        raise CXRInputError(path, f"expected one 2D frame, decoded an array of shape {value.shape}")

    voi_applied = False
    if apply_voi and ("VOILUTSequence" in ds or "WindowCenter" in ds):
        value = apply_voi_lut(value, ds, index=0)
        voi_applied = True
    value = np.asarray(value, dtype=np.float32)
    if photometric == "MONOCHROME1":  # high values mean dark: flip within the value range
        value = value.max() + value.min() - value

    spacing, spacing_source = pixel_spacing(ds)
    meta = {
        "spacing": spacing,
        "spacing_source": spacing_source,
        "photometric_interpretation": photometric,
        "original_size": (int(ds.Rows), int(ds.Columns)),
        "transfer_syntax": ts_name,
        "modality": str(ds.get("Modality", "")),
        "voi_applied": voi_applied,
        "decoder": decoder,
    }
    return value, meta
