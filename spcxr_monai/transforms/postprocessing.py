"""Post-processing of predicted lung masks, from MONAI's own transforms: back to the radiograph's own size
with smooth interpolation, then cleaned."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import (
    Compose,
    FillHolesd,
    KeepLargestConnectedComponentd,
    MapTransform,
    Resize,
    Transform,
)
from monai.utils import TransformBackends

__all__ = ["ResizeToSource", "ResizeToSourceD", "ResizeToSourceDict", "ResizeToSourced", "lung_mask_cleanup"]


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
