"""Load transforms for chest X-rays: MONAI's ``LoadImage`` / ``LoadImaged`` with :class:`CXRReader`."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from monai.config import DtypeLike, KeysCollection
from monai.transforms import LoadImage, LoadImaged

from spcxr_monai.data.cxr_reader import CXRReader

__all__ = ["LoadCXR", "LoadCXRd", "LoadCXRD", "LoadCXRDict"]


@contextlib.contextmanager
def _stock_readers_quietly() -> Iterator[None]:
    """MONAI's ``LoadImage`` builds every stock reader; here only :class:`CXRReader` is kept. Its GPU DICOM
    reader warns twice wherever nvImageCodec is absent (every CPU machine): noise, since it is never used."""
    plugin_logger = logging.getLogger("monai.data.nvimgcodec_pydicom_plugin")
    level = plugin_logger.level
    plugin_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="NvImgCodecPydicomReader")
            yield
    finally:
        plugin_logger.setLevel(level)


class LoadCXR(LoadImage):
    """Load a chest X-ray (DICOM, PNG/JPEG, NIfTI, MHA/NRRD) as a float (1, rows, cols) MetaTensor.

    The grey plane is in display order (row 0 at the top; the transpose of MONAI's default
    (x, y) layout, see :mod:`spcxr_monai.data.cxr_reader`); DICOM gets its Modality and VOI LUT and
    MONOCHROME1 is inverted so air is dark. Meta carries ``filename_or_obj``, ``spacing``,
    ``photometric_interpretation`` and ``original_size``.

    Args:
        apply_voi: apply a DICOM file's VOI LUT / window.
        dtype: output dtype, float32 by default.
        kwargs: passed on to ``monai.transforms.LoadImage``.

    Raises:
        CXRInputError: a missing, empty, corrupt or unsupported file, named in the message.
    """

    def __init__(self, apply_voi: bool = True, dtype: DtypeLike = np.float32, **kwargs: Any) -> None:
        kwargs.setdefault("image_only", True)
        kwargs.setdefault("ensure_channel_first", True)
        with _stock_readers_quietly():
            super().__init__(reader=None, dtype=dtype, **kwargs)
        # Only CXRReader, picked by suffix: its errors (naming the file) reach the caller unchanged
        # instead of MONAI's fall-through to the other registered readers.
        self.readers = [CXRReader(apply_voi=apply_voi)]


class LoadCXRd(LoadImaged):
    """Dictionary version of :class:`LoadCXR`.

    Args:
        keys: keys of the items holding file paths.
        apply_voi: apply a DICOM file's VOI LUT / window.
        dtype: output dtype, float32 by default.
        allow_missing_keys: don't raise when a key is absent.
        kwargs: passed on to ``monai.transforms.LoadImaged``.
    """

    def __init__(
        self,
        keys: KeysCollection,
        apply_voi: bool = True,
        dtype: DtypeLike = np.float32,
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("image_only", True)
        kwargs.setdefault("ensure_channel_first", True)
        with _stock_readers_quietly():
            super().__init__(keys, dtype=dtype, allow_missing_keys=allow_missing_keys, **kwargs)
        self._loader = LoadCXR(apply_voi=apply_voi, dtype=dtype, **kwargs)


LoadCXRD = LoadCXRDict = LoadCXRd
