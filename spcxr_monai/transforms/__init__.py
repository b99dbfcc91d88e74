"""MONAI transforms of spcxr_monai, usable from bundle JSON by ``_target_``."""

from spcxr_monai.transforms.batch_affine import RandAffineBatch
from spcxr_monai.transforms.dicom_seg import SaveDicomSeg, SaveDicomSegD, SaveDicomSegd, SaveDicomSegDict
from spcxr_monai.transforms.group_mask import (
    CORRUPTIONS,
    RandGroupMask,
    RandGroupMaskD,
    RandGroupMaskd,
    RandGroupMaskDict,
    draw_group_masks,
    group_mask_batch,
)
from spcxr_monai.transforms.io import LoadCXR, LoadCXRD, LoadCXRd, LoadCXRDict
from spcxr_monai.transforms.postprocessing import (
    ResizeToSource,
    ResizeToSourceD,
    ResizeToSourced,
    ResizeToSourceDict,
    lung_mask_cleanup,
    native_resolution_masks,
)
from spcxr_monai.transforms.preprocessing import cxr_preprocessing
from spcxr_monai.transforms.temperature import (
    TemperatureScale,
    TemperatureScaleD,
    TemperatureScaled,
    TemperatureScaleDict,
)

__all__ = [
    "CORRUPTIONS",
    "RandAffineBatch",
    "RandGroupMask",
    "RandGroupMaskd",
    "RandGroupMaskD",
    "RandGroupMaskDict",
    "draw_group_masks",
    "group_mask_batch",
    "LoadCXR",
    "LoadCXRd",
    "LoadCXRD",
    "LoadCXRDict",
    "ResizeToSource",
    "ResizeToSourced",
    "ResizeToSourceD",
    "ResizeToSourceDict",
    "SaveDicomSeg",
    "SaveDicomSegd",
    "SaveDicomSegD",
    "SaveDicomSegDict",
    "TemperatureScale",
    "TemperatureScaled",
    "TemperatureScaleD",
    "TemperatureScaleDict",
    "cxr_preprocessing",
    "lung_mask_cleanup",
    "native_resolution_masks",
]
