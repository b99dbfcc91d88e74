"""The one CXR preprocessing chain (load -> resize -> normalise) of every bundle config and the notebook."""

from __future__ import annotations

from collections.abc import Sequence

from monai.transforms import AsDiscreted, CopyItemsd, EnsureTyped, MapTransform, NormalizeIntensityd, Resized

from spcxr_monai.transforms.io import LoadCXRd

__all__ = ["cxr_preprocessing"]


def cxr_preprocessing(
    image_size: int | Sequence[int],
    image_key: str = "image",
    label_key: str | None = None,
    mask_max: float = 255.0,
    file_key: str | None = "image_file",
    label_file_key: str | None = None,
    ensure_type: bool = False,
    track_meta: bool = True,
    load: bool = True,
) -> list[MapTransform]:
    """Dictionary transforms that turn a CXR file (and its lung mask) into model input.

    ``CopyItemsd`` keeps the image's path under ``file_key`` (named by errors, e.g. a NaN loss);
    :class:`LoadCXRd` reads any format air-dark and checked; ``Resized`` (area for the image, nearest
    for the mask) to ``image_size``; ``NormalizeIntensityd`` to zero mean, unit variance per image; the
    mask thresholded at half its ``mask_max`` to {0, 1}.

    Args:
        image_size: side (or (H, W)) the image is resized to.
        image_key: key of the image path.
        label_key: key of a lung-mask path, loaded and resized with the image (None: no mask).
        mask_max: the masks' foreground value (255 for 8-bit PNG masks).
        file_key: where to copy the image path first; None to skip.
        label_file_key: where to copy the mask's path first (for metrics at the mask's own size,
            :func:`~spcxr_monai.transforms.native_resolution_masks`); None to skip.
        ensure_type: end with ``EnsureTyped`` (for evaluation and inference; training ends its
            augmentation with one).
        track_meta: ``EnsureTyped``'s ``track_meta``.
        load: start with :class:`LoadCXRd`; False: the items already hold decoded (1, rows, cols) images.

    Returns:
        the transforms in order, for ``Compose`` (inference configs invert the ``Resized`` by them).
    """
    size = [image_size, image_size] if isinstance(image_size, int) else list(image_size)
    keys = [image_key] if label_key is None else [image_key, label_key]
    chain: list[MapTransform] = [CopyItemsd(keys=image_key, names=file_key)] if file_key else []
    if label_file_key and label_key is not None:
        chain.append(CopyItemsd(keys=label_key, names=label_file_key))
    chain += [LoadCXRd(keys=keys)] if load else []
    chain += [
        Resized(keys=keys, spatial_size=size, mode=["area", "nearest"][: len(keys)]),
        NormalizeIntensityd(keys=image_key),
    ]
    if label_key is not None:
        chain.append(AsDiscreted(keys=label_key, threshold=0.5 * mask_max))
    if ensure_type:
        chain.append(EnsureTyped(keys=keys, track_meta=track_meta))
    return chain
