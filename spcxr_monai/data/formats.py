"""The image file formats the toolkit reads: one suffix table for the reader and the folder scans."""

from __future__ import annotations

import os

__all__ = ["FORMAT_SUFFIXES", "IMAGE_SUFFIXES", "image_format", "is_image_file"]

# reader -> file name suffixes (lower case, no dot); DICOM is also recognised by its content
FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "dicom": ("dcm", "dicom", "dic"),
    "pil": ("png", "jpg", "jpeg", "bmp", "tif", "tiff"),
    "nifti": ("nii", "nii.gz"),
    "itk": ("mha", "mhd", "nrrd", "nhdr"),
}
_DOTTED = {fmt: tuple(f".{s}" for s in suffixes) for fmt, suffixes in FORMAT_SUFFIXES.items()}
IMAGE_SUFFIXES = tuple(s for dotted in _DOTTED.values() for s in dotted)


def image_format(path: str | os.PathLike) -> str | None:
    """The reader (a key of :data:`FORMAT_SUFFIXES`) for the file's suffix, or None."""
    name = os.fspath(path).lower()
    return next((fmt for fmt, dotted in _DOTTED.items() if name.endswith(dotted)), None)


def is_image_file(path: str | os.PathLike) -> bool:
    """A visible file with an image suffix."""
    name = os.path.basename(os.fspath(path))
    return os.path.isfile(path) and not name.startswith(".") and image_format(name) is not None
