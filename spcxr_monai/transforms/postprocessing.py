"""Post-processing of predicted lung masks, from MONAI's own transforms."""

from __future__ import annotations

from monai.config import KeysCollection
from monai.transforms import Compose, FillHolesd, KeepLargestConnectedComponentd

__all__ = ["lung_mask_cleanup"]


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
