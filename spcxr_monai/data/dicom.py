"""Decoding a single-frame chest X-ray DICOM into display-ready grey values.

The steps follow DICOM PS3.3 C.11 (the grayscale pipeline): stored values -> Modality LUT
(RescaleSlope/Intercept or a Modality LUT Sequence) -> VOI LUT (a VOI LUT Sequence, else the first
WindowCenter/WindowWidth) -> presentation, where MONOCHROME1 is inverted so that air is dark, like
MONOCHROME2 and like every PNG in the training data.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError
from pydicom.misc import is_dicom

try:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut
except ImportError:  # pydicom 2.4, as pinned in the MONAI Label environment (monailabel_app/)
    from pydicom.pixel_data_handlers.util import apply_modality_lut, apply_voi_lut  # type: ignore[no-redef]

from spcxr_monai.data.checks import check_sound
from spcxr_monai.data.errors import CXRInputError

__all__ = ["UNKNOWN_SPACING", "read_dicom_cxr", "is_dicom_file", "pixel_spacing"]

logger = logging.getLogger(__name__)


def is_dicom_file(path: str | os.PathLike) -> bool:
    """True when the file carries the DICOM Part 10 preamble magic ``DICM`` (``pydicom.misc.is_dicom``);
    False also for a file that cannot be opened."""
    try:
        return is_dicom(os.fspath(path))
    except OSError:
        return False


def _decode_with_itk(path: str) -> np.ndarray:
    """Second decoder (GDCM inside SimpleITK) for transfer syntaxes pylibjpeg cannot handle.

    GDCM applies the Modality LUT and presents MONOCHROME1 already inverted (air dark)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.SetImageIO("GDCMImageIO")
    # GDCM applies the Modality LUT itself; the caller must not apply it twice.
    return np.squeeze(sitk.GetArrayFromImage(reader.Execute()))


UNKNOWN_SPACING = (math.nan, math.nan)
PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010) in little endian, as every CXR transfer syntax stores it


def pixel_spacing(ds: Any) -> tuple[tuple[float, float], str]:
    """Row and column spacing in mm and the attribute it came from; ``((nan, nan), "unknown")`` when
    the file has none, or only zero, negative or infinite values (never a guessed 1 mm)."""
    for attr in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(attr)
        try:
            if value is not None and len(value) == 2 and all(0 < float(v) < math.inf for v in value):
                return (float(value[0]), float(value[1])), attr
        except (TypeError, ValueError):  # a malformed decimal string: as good as absent
            continue
    return UNKNOWN_SPACING, "unknown"


def _missing_pixel_data(path: str) -> CXRInputError:
    """The error for a dataset without PixelData: pydicom drops an element cut short by the end of the
    file silently, so look for the tag in the raw bytes to tell a truncated file from one without pixels."""
    with open(path, "rb") as f:
        raw = f.read()
    at = raw.rfind(PIXEL_DATA_TAG)
    if at >= 0:
        return CXRInputError(
            path,
            f"file is truncated: its pixel data start at byte {at} but the file ends at "
            f"byte {len(raw)}, before their end",
        )
    return CXRInputError(
        path,
        f"DICOM has no pixel data (no PixelData element in its {len(raw)} bytes; "
        "if the file was cut short, the cut came before the pixel data)",
    )


def read_dicom_cxr(path: str | os.PathLike, apply_voi: bool = True) -> tuple[np.ndarray, dict]:
    """Read one single-frame grey DICOM radiograph.

    Args:
        path: the DICOM file.
        apply_voi: apply the VOI LUT or the first window centre/width when the file has one.

    Returns:
        ``(array, meta)``: a float32 array of shape (rows, columns), row 0 at the top of the displayed
        image, air dark; ``meta`` holds ``spacing`` (row, column mm; NaN when unknown), ``spacing_source``
        (the attribute, or "unknown"),
        ``photometric_interpretation``, ``original_size`` (rows, columns), ``transfer_syntax``,
        ``modality``, ``voi_applied`` and ``decoder``.

    Raises:
        CXRInputError: the file is missing, empty, not DICOM, has no or empty pixel data, is
            multi-frame or colour, its pixel data could not be decoded or do not match the header's
            size, or the values are non-finite or constant. The message starts with the path.

    A window that misses the pixel values (all, or 90% sent to its extremes) is ignored with a warning
    (the data's range is kept). Uncompressed pixel data must match the header's size and
    ``BitsStored``; a negative ``RescaleSlope`` is refused (it would invert the image).
    """
    path = os.fspath(path)
    ds, photometric, ts_name = _read_header(path)
    value, decoder = _decode_modality_values(ds, path, ts_name)
    voi_applied = False
    if apply_voi and ("VOILUTSequence" in ds or "WindowCenter" in ds):
        value, voi_applied = _apply_window(value, ds, path)
    value = np.asarray(value, dtype=np.float32)
    if photometric == "MONOCHROME1" and decoder != "gdcm":  # high values mean dark: flip within the range
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


def _read_header(path: str) -> tuple[Any, str, str]:
    """The dataset, its photometric interpretation and transfer syntax name, once the header describes one
    single-frame grey radiograph whose pixel data are present (and, uncompressed, of the right size)."""
    if not os.path.isfile(path):
        raise CXRInputError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise CXRInputError(path, "file is empty")
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, EOFError, OSError, ValueError) as e:
        raise CXRInputError(path, f"not a readable DICOM file ({e})") from e
    if "PixelData" not in ds:
        raise _missing_pixel_data(path)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise CXRInputError(path, f"multi-frame DICOM ({frames} frames) is not a single radiograph")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise CXRInputError(path, f"photometric interpretation {photometric} is not a grey radiograph")
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    ts_name = getattr(ts, "name", str(ts))
    if len(ds.PixelData or b"") == 0:
        raise CXRInputError(path, "DICOM pixel data is empty (PixelData has length 0)")
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if rows < 2 or cols < 2:
        raise CXRInputError(path, f"DICOM header gives an image of {rows} x {cols} pixels")
    if ds.get("PixelRepresentation", 0) not in (0, 1):
        raise CXRInputError(
            path, f"PixelRepresentation {ds.get('PixelRepresentation')} is neither 0 (unsigned) nor 1 (signed)"
        )
    if ts is not None and not ts.is_compressed:
        _check_native_pixel_data(ds, path, rows, cols)
    slope = ds.get("RescaleSlope")
    try:
        if slope is not None and float(slope) < 0:
            raise CXRInputError(path, f"RescaleSlope {slope} is negative: it would invert the radiograph")
    except (TypeError, ValueError):
        raise CXRInputError(path, f"RescaleSlope {slope!r} is not a number") from None
    return ds, photometric, ts_name


def _decode_modality_values(ds: Any, path: str, ts_name: str) -> tuple[np.ndarray, str]:
    """The pixel values after the Modality LUT, of the header's size and sound, and the decoder that made them
    (pydicom's plug-ins, else GDCM)."""
    rows, cols = int(ds.Rows), int(ds.Columns)
    decoder = "pydicom"
    try:
        value = apply_modality_lut(ds.pixel_array, ds)
    except Exception as first:  # every decoder plug-in failed: try GDCM before giving up
        try:
            value = _decode_with_itk(path).astype(np.float64)
            decoder = "gdcm"
        except Exception as second:
            raise CXRInputError(
                path, f"pixel data could not be decoded ({ts_name}): pydicom: {first}; GDCM: {second}"
            ) from first
    if value.ndim != 2 or value.shape != (rows, cols):
        raise CXRInputError(
            path, f"decoded pixel data of shape {value.shape} does not match the header's {rows} x {cols}"
        )
    check_sound(
        value,
        path,
        f"after the Modality LUT: BitsStored {ds.get('BitsStored')}, RescaleSlope "
        f"{ds.get('RescaleSlope')}, RescaleIntercept {ds.get('RescaleIntercept')}",
    )
    return value, decoder


def _apply_window(value: np.ndarray, ds: Any, path: str) -> tuple[np.ndarray, bool]:
    """The values through the header's VOI LUT / first window, and whether it was applied: a window that
    misses the data (all, or 90% sent to its extremes) would blank the image, so the data's range is kept."""
    windowed = np.asarray(apply_voi_lut(value, ds, index=0), dtype=np.float64)
    if np.ptp(windowed) > 0 and _saturated_fraction(windowed) < MAX_SATURATED:
        return windowed, True
    logger.warning(
        "%s: the VOI LUT / window (centre %s, width %s) misses the pixel values (%g..%g); using the data's range",
        path,
        ds.get("WindowCenter"),
        ds.get("WindowWidth"),
        float(value.min()),
        float(value.max()),
    )
    return value, False


MAX_SATURATED = 0.9  # real CXR windows clip ~0-2% of the pixels; 90% means the window misses the data


def _saturated_fraction(windowed: np.ndarray) -> float:
    """Fraction of pixels a VOI LUT / window sent to its lowest or highest output."""
    return float(np.mean((windowed == windowed.min()) | (windowed == windowed.max())))


def _check_native_pixel_data(ds: Any, path: str, rows: int, cols: int) -> None:
    """Uncompressed pixel data must be what the header says: pydicom decodes a buffer of the wrong
    length or values beyond ``BitsStored`` without complaint, into a scrambled image."""
    bits_allocated = int(ds.get("BitsAllocated", 0) or 0)
    bits_stored = int(ds.get("BitsStored", bits_allocated) or 0)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if bits_allocated not in (8, 16, 32) or not 1 < bits_stored <= bits_allocated or samples != 1:
        raise CXRInputError(
            path,
            f"BitsAllocated {bits_allocated}, BitsStored {bits_stored}, SamplesPerPixel "
            f"{samples} do not describe a grey radiograph",
        )
    expected = rows * cols * bits_allocated // 8
    actual = len(ds.PixelData)
    if actual not in (expected, expected + 1):  # +1: the padding byte of an odd length
        raise CXRInputError(
            path,
            f"pixel data hold {actual} bytes; the header (Rows {rows} x Columns {cols} x "
            f"BitsAllocated {bits_allocated}) needs {expected}",
        )
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    little = getattr(ds.file_meta.TransferSyntaxUID, "is_little_endian", True)
    raw = np.frombuffer(
        ds.PixelData[:expected], dtype=f"{'<' if little else '>'}{'i' if signed else 'u'}{bits_allocated // 8}"
    )
    low, high = (-(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1) if signed else (0, (1 << bits_stored) - 1)
    if raw.min() < low or raw.max() > high:
        raise CXRInputError(
            path,
            f"stored values {raw.min()}..{raw.max()} do not fit BitsStored {bits_stored} "
            f"({'signed' if signed else 'unsigned'}, {low}..{high}): the header does not "
            "describe these pixels",
        )
