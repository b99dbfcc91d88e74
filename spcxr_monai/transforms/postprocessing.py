"""Post-processing of predicted lung masks, from MONAI's own transforms: back to the radiograph's own size
with smooth interpolation, then cleaned; and the same at evaluation, beside the reference mask at its own size."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import (
    AsDiscreted,
    Compose,
    CopyItemsd,
    FillHolesd,
    KeepLargestConnectedComponentd,
    MapTransform,
    Resize,
    Transform,
)
from monai.utils import TransformBackends

from spcxr_monai.data.errors import CXRInputError
from spcxr_monai.transforms.io import LoadCXRd

__all__ = [
    "ResizeToSource",
    "ResizeToSourceD",
    "ResizeToSourceDict",
    "ResizeToSourced",
    "lung_mask_cleanup",
    "native_resolution_masks",
]


class ResizeToSource(Transform):
    """Resize a prediction made at the model's size back to its source image's size, smoothly.

    MONAI's ``Invertd`` undoes the preprocessing's ``Resized`` with the mode it was applied with ("area" here),
    which upsampling turns into blocks: a 2k radiograph's mask borders come back in 16-pixel stairs. Here the
    class probabilities are interpolated (bilinear by default) to the source's loaded size, so the argmax taken
    afterwards, at full resolution, follows the lungs' outline; the source's meta (file name, spacing) comes
    along, the affine rescaled by MONAI's ``Resize``.

    Args:
        mode: ``torch.nn.functional.interpolate``'s mode for the probabilities.

    ``__call__(pred, source)``: ``pred`` (C, h, w) probabilities, ``source`` the preprocessed image (a
    MetaTensor whose meta holds the loaded ``spatial_shape``) -> (C, rows, cols) MetaTensor.

    Raises:
        ValueError: the source is not a MetaTensor with a ``spatial_shape``.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, mode: str = "bilinear") -> None:
        self.mode = mode

    def __call__(self, pred: torch.Tensor, source: torch.Tensor) -> torch.Tensor:  # type: ignore[override]  # needs its source
        if not isinstance(source, MetaTensor) or "spatial_shape" not in source.meta:
            raise ValueError("ResizeToSource needs the preprocessed source image as a MetaTensor (its spatial_shape)")
        size = [int(s) for s in source.meta["spatial_shape"]][-2:]
        probs = MetaTensor(torch.as_tensor(pred).float(), meta=dict(source.meta))  # affine of the model's grid
        resize = Resize(spatial_size=size, mode=self.mode, align_corners=False)
        with resize.trace_transform(False):
            return resize(probs)


class ResizeToSourced(MapTransform):
    """Dictionary version of :class:`ResizeToSource`.

    Args:
        keys: keys of the predictions.
        source_key: key of the preprocessed source image.
        mode: as :class:`ResizeToSource`.
        allow_missing_keys: don't raise when a key is absent.
    """

    backend = ResizeToSource.backend

    def __init__(
        self, keys: KeysCollection, source_key: str = "image", mode: str = "bilinear", allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.source_key = source_key
        self.resizer = ResizeToSource(mode)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.resizer(d[key], d[self.source_key])
        return d


ResizeToSourceD = ResizeToSourceDict = ResizeToSourced


def lung_mask_cleanup(keys: KeysCollection, num_components: int = 2, enabled: bool = True) -> Compose:
    """Keep the ``num_components`` largest lung regions of a discrete mask and fill their holes.

    Two lungs are two connected regions; what a segmentation network adds beyond them (a blob over the
    stomach, a speck at the border) is noise, and a hole inside a lung is a miss (what it changes on
    the study's held-out images: the segmentation bundle's README).

    Args:
        keys: keys of the masks: (1, H, W) label maps (0 background, 1 lungs), before any one-hot encoding,
            which then stays consistent (a filled hole is lung in one channel, not in both).
        num_components: lung regions kept (2: left and right; 1 where the lungs touch).
        enabled: False gives an empty ``Compose`` (a bundle switch without editing its transform list).

    Returns:
        ``Compose`` of ``KeepLargestConnectedComponentd`` and ``FillHolesd`` on the lung label (1).
    """
    if not enabled:
        return Compose([])
    return Compose(
        [
            KeepLargestConnectedComponentd(keys, applied_labels=[1], is_onehot=False, num_components=num_components),
            FillHolesd(keys, applied_labels=[1]),
        ]
    )


class _SameShaped(MapTransform):
    """Raise, naming the reference file, when a reference mask's shape is not its prediction's (a mask made
    for another image, or for a resized copy of it): a Dice over misaligned grids would be silently wrong."""

    def __init__(self, keys: KeysCollection, reference_key: str, file_key: str) -> None:
        super().__init__(keys)
        self.reference_key = reference_key
        self.file_key = file_key

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            pred, ref = tuple(d[key].shape[1:]), tuple(d[self.reference_key].shape[1:])
            if pred != ref:
                raise CXRInputError(
                    str(d.get(self.file_key)),
                    f"the mask is {ref[0]} x {ref[1]} pixels, its image {pred[0]} x {pred[1]}; "
                    "a mask must have its radiograph's size",
                )
        return d


def native_resolution_masks(
    pred_key: str = "pred",
    source_key: str = "image",
    label_file_key: str = "label_file",
    output_suffix: str = "_native",
    mask_max: float = 255.0,
    clean: bool = True,
    enabled: bool = True,
) -> Compose:
    """The predicted and the reference lung mask at the radiograph's own size, for metrics there.

    What a reader sees is the mask at the radiograph's size (inference's :class:`ResizeToSourced`, argmax
    there, cleanup): the metrics of the model's grid (128 px against a nearest-resized reference) are not
    that. Here the class probabilities under ``pred_key`` are copied, resized smoothly to the source, argmax
    taken and cleaned as inference does; the reference mask is read again from its file, untouched. Both end
    one-hot (2 channels), ready for MONAI's ``MeanDice`` / ``HausdorffDistance``; the reference keeps its
    file's meta (``spacing`` in mm, NaN when the file does not say).

    Args:
        pred_key: key of the (2, h, w) class probabilities (after softmax, before argmax).
        source_key: key of the preprocessed image (a MetaTensor with the loaded ``spatial_shape``).
        label_file_key: key holding the reference mask's path (``cxr_preprocessing``'s ``label_file_key``).
        output_suffix: the results go to ``pred_key + suffix`` and ``"label" + suffix``.
        mask_max: the masks' foreground value (255 for 8-bit PNG masks); thresholded at half of it.
        clean: the lung cleanup (:func:`lung_mask_cleanup`) as inference does.
        enabled: False gives an empty ``Compose`` (training's validation skips this; evaluation runs it).

    Returns:
        ``Compose`` adding ``pred<suffix>`` and ``label<suffix>``: (2, rows, cols) one-hot at the source's size.

    Raises:
        CXRInputError: a reference mask whose size is not its radiograph's, naming the mask's file.
    """
    if not enabled:
        return Compose([])
    pred_out, label_out = pred_key + output_suffix, "label" + output_suffix
    return Compose(
        [
            CopyItemsd(keys=pred_key, names=pred_out),
            ResizeToSourced(keys=pred_out, source_key=source_key),
            AsDiscreted(keys=pred_out, argmax=True),
            lung_mask_cleanup(pred_out, enabled=clean),
            CopyItemsd(keys=label_file_key, names=label_out),
            LoadCXRd(keys=label_out),
            AsDiscreted(keys=label_out, threshold=0.5 * mask_max),
            _SameShaped(keys=pred_out, reference_key=label_out, file_key=label_file_key),
            AsDiscreted(keys=[pred_out, label_out], to_onehot=2),
        ]
    )
