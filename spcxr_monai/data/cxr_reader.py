"""A MONAI ``ImageReader`` for chest X-rays in any of the formats CXR archives come in.

DICOM goes through :func:`spcxr_monai.data.dicom.read_dicom_cxr`; PNG/JPEG, NIfTI and MHA/NRRD go
through MONAI's own ``PILReader``, ``NibabelReader`` and ``ITKReader``. Whatever the source, the
reader returns one grey plane in *display order*: shape (rows, columns), row 0 the top of the
image as a radiologist sees it. MONAI's stock readers instead return (x, y) = (columns, rows), the
ITK/NIfTI index order; a CXR loaded here is the transpose of the one ``LoadImage()`` gives by
default. Display order keeps patch grids, figures and PNG masks in register without transposes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from monai.data import ImageReader, ITKReader, NibabelReader, PILReader
from monai.data.utils import is_supported_format
from monai.utils import ensure_tuple

from spcxr_monai.data.checks import check_sound
from spcxr_monai.data.dicom import UNKNOWN_SPACING, is_dicom_file, read_dicom_cxr
from spcxr_monai.data.errors import CXRInputError
from spcxr_monai.data.formats import FORMAT_SUFFIXES

__all__ = ["CXRReader", "to_grey"]

PIL_SUFFIXES, NIFTI_SUFFIXES, ITK_SUFFIXES, DICOM_SUFFIXES = (
    FORMAT_SUFFIXES[f] for f in ("pil", "nifti", "itk", "dicom")
)
# PIL modes whose samples are not intensities; converted to "L" (BT.601 luma) before reading
INDIRECT_MODES = ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1")
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as PIL's "L" mode


def to_grey(array: np.ndarray, path: str) -> np.ndarray:
    """Turn a channel-last (rows, cols[, C]) array into one grey plane (rows, cols).

    Args:
        array: grey (2D), grey+alpha (C=2), RGB (C=3) or RGBA (C=4); alpha is dropped.
        path: the source file, named in errors.

    Raises:
        CXRInputError: any other channel count.
    """
    if array.ndim == 2:
        return array.astype(np.float32)
    if array.ndim == 3 and array.shape[-1] in (1, 2):
        return array[..., 0].astype(np.float32)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        return array[..., :3].astype(np.float32) @ LUMA_WEIGHTS
    raise CXRInputError(path, f"expected a grey, RGB or RGBA image, got an array of shape {array.shape}")


class CXRReader(ImageReader):
    """Read one 2D chest X-ray from DICOM, PNG/JPEG/BMP/TIFF, NIfTI or MHA/NRRD.

    Use it with ``LoadImage(reader=CXRReader())`` or the ready-made
    :class:`spcxr_monai.transforms.LoadCXR`. ``get_data`` returns an array of shape (rows, cols)
    (float32, display order: see the module docstring) and a meta dict with ``spacing``
    (row, col mm; NaN when the file does not say, with ``spacing_source`` "unknown"), ``original_size`` (rows, cols), ``photometric_interpretation``, ``format``,
    ``affine`` (3x3, diagonal spacing) and ``original_channel_dim`` ("no_channel").

    Args:
        apply_voi: for DICOM, apply the VOI LUT / window stored in the file.

    Raises:
        CXRInputError: on a missing, empty or undecodable file, a multi-frame DICOM, an image whose
            channels are not grey/RGB(A), or decoded values that are not finite or constant; the
            message starts with the path.
    """

    def __init__(self, apply_voi: bool = True) -> None:
        super().__init__()
        self.apply_voi = apply_voi
        self._pil = PILReader(reverse_indexing=False)
        self._nibabel = NibabelReader(squeeze_non_spatial_dims=True)
        self._itk: ITKReader | None = None  # built at the first MHA / NRRD: it needs the itk package

    def verify_suffix(self, filename: Sequence[str | os.PathLike] | str | os.PathLike) -> bool:
        """Claim any single file: :meth:`read` names the file when its format is not supported."""
        return len(ensure_tuple(filename)) == 1

    def read(self, data: Sequence[str | os.PathLike] | str | os.PathLike, **kwargs: Any) -> tuple[np.ndarray, dict]:
        """Decode the file now; returns ``(array, meta)`` ready for :meth:`get_data`."""
        names = ensure_tuple(data)
        if len(names) != 1:
            raise ValueError(f"CXRReader reads one file at a time, got {len(names)}: {names}")
        path = os.fspath(names[0])
        if not os.path.exists(path):
            raise CXRInputError(path, "file not found")
        if os.path.isdir(path):
            raise CXRInputError(path, "is a folder, expected one image file")
        if os.path.getsize(path) == 0:
            raise CXRInputError(path, "file is empty")
        try:
            if is_supported_format(path, DICOM_SUFFIXES) or is_dicom_file(path):
                array, meta = read_dicom_cxr(path, apply_voi=self.apply_voi)
                meta["format"] = "DICOM"
            elif is_supported_format(path, PIL_SUFFIXES):
                array, meta = self._read_pil(path)
            elif is_supported_format(path, NIFTI_SUFFIXES):
                array, meta = self._read_volume(path, self._nibabel, transpose=True)
            elif is_supported_format(path, ITK_SUFFIXES):
                self._itk = self._itk or ITKReader(reverse_indexing=True)
                array, meta = self._read_volume(path, self._itk, transpose=False)
            else:
                raise CXRInputError(path, "unknown image format (expected DICOM, PNG/JPEG, NIfTI, MHA or NRRD)")
        except CXRInputError:
            raise
        except Exception as e:  # a decoder's own error: keep it, but say which file
            raise CXRInputError(path, f"could not be read as an image ({type(e).__name__}: {e})") from e
        known = [s if np.isfinite(s) else 1.0 for s in meta["spacing"]]  # unknown: pixel units in the affine
        meta.update(
            {
                "filename_or_obj": path,
                "spatial_shape": np.asarray(array.shape),
                "original_channel_dim": "no_channel",
                "affine": np.diag([*known, 1.0]),
            }
        )
        return array, meta

    def get_data(self, img: tuple[np.ndarray, dict]) -> tuple[np.ndarray, dict]:
        """Return the ``(array, meta)`` pair produced by :meth:`read`."""
        array, meta = img
        return array, dict(meta)

    def _read_pil(self, path: str) -> tuple[np.ndarray, dict]:
        image = self._pil.read(path)
        mode = image.mode
        if mode in INDIRECT_MODES:  # palette indices, ink amounts, other colour spaces: not grey values
            image = image.convert("L")
        array, _ = self._pil.get_data(image)  # (rows, cols[, C]) with reverse_indexing=False
        array = to_grey(np.asarray(array), path)
        meta = {
            "spacing": UNKNOWN_SPACING,  # PNG/JPEG carry no detector geometry (a DPI is not a pixel spacing)
            "spacing_source": "unknown",
            "photometric_interpretation": "MONOCHROME2",
            "original_size": tuple(int(s) for s in array.shape),
            "format": f"{image.format}:{mode}",
        }
        check_sound(array, path, str(meta["format"]))  # DICOM is checked in read_dicom_cxr, with its tags
        return array, meta

    def _read_volume(self, path: str, reader: ImageReader, transpose: bool) -> tuple[np.ndarray, dict]:
        image = reader.read(path)
        array, header = reader.get_data(image)
        # copy while `image` is alive: ITKReader returns a view on memory freed with the ITK image
        array = np.squeeze(np.array(array, dtype=np.float32, copy=True))
        if array.ndim != 2:
            raise CXRInputError(path, f"expected a single 2D image, got an array of shape {array.shape}")
        if "pixdim" in header:  # NIfTI: pixdim[1:3] = (dx, dy)
            dx, dy = (float(v) for v in np.asarray(header["pixdim"])[1:3])
        else:  # ITK: spacing = (dx, dy)
            dx, dy = (float(v) for v in np.asarray(header.get("spacing", UNKNOWN_SPACING))[:2])
        if transpose:  # NIfTI data is indexed (i=x=column, j=y=row): flip to (rows, columns)
            array = array.T
        known = all(0 < v < np.inf for v in (dx, dy))
        meta = {
            "spacing": (dy, dx) if known else UNKNOWN_SPACING,
            "spacing_source": type(reader).__name__ if known else "unknown",
            "photometric_interpretation": "MONOCHROME2",
            "original_size": tuple(int(s) for s in array.shape),
            "format": type(reader).__name__.replace("Reader", ""),
        }
        check_sound(array, path, str(meta["format"]))
        return np.ascontiguousarray(array), meta
