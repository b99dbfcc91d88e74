"""What a ViT encoder sees in an image: mean-pooled final tokens, the features every probe, the drift test
and the input gate compare.

One route for all of them: images go through the bundles' own preprocessing
(:func:`~spcxr_monai.transforms.cxr_preprocessing`: checked, area-resized, z-scored per image), the encoder
runs in eval mode under the precision :func:`~spcxr_monai.utils.resolve_amp_dtype` picks, and the final
tokens are averaged.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from monai.data import DataLoader, Dataset
from monai.transforms import Compose
from monai.utils import CommonKeys
from torch import nn

from spcxr_monai.networks.classifier import create_vit_classifier
from spcxr_monai.networks.transfer import encoder_of, maybe_load_encoder_weights
from spcxr_monai.transforms.preprocessing import cxr_preprocessing
from spcxr_monai.utils.precision import autocast, resolve_amp_dtype

__all__ = ["encoder_features", "image_features", "load_feature_encoder"]


@torch.no_grad()
def encoder_features(
    network: nn.Module,
    loader: Iterable,
    device: torch.device | str = "cpu",
    amp: str | None = "auto",
    image_key: str = CommonKeys.IMAGE,
    label_key: str | None = CommonKeys.LABEL,
    blocks: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean-pooled final tokens of the network's ViT encoder for every batch of ``loader``.

    Args:
        network: a MONAI ``ViT`` or a module holding one as ``.vit`` (GMMLViT, ViTClassifier, UNETR).
        loader: batches of dicts with ``image_key`` (B, C, H, W) and, unless ``label_key`` is None,
            ``label_key`` (B,).
        device: where to run.
        amp: autocast precision (see :func:`spcxr_monai.utils.resolve_amp_dtype`).
        blocks: also the tokens after these transformer blocks (1-based, before the final norm), in one
            pass: masked-image pretraining leaves its most linearly separable features in the middle
            blocks of a small ViT (TinyMIM), which a probe of the final tokens alone never sees.

    Returns:
        ``(features, labels)``: float32 (N, D), or (N, len(blocks) + 1, D) with ``blocks`` (the listed
        blocks', then the final normed tokens), and int (N,) (all 0 when ``label_key`` is None).
    """
    vit = encoder_of(network)
    depth = len(vit.blocks)
    if blocks is not None and not all(1 <= b <= depth for b in blocks):
        raise ValueError(f"blocks must lie in 1..{depth} (the encoder's blocks), got {list(blocks)}.")
    was_training = vit.training
    vit.eval()
    dtype = resolve_amp_dtype(amp, device)
    feats, labels = [], []
    try:
        for batch in loader:
            images = torch.as_tensor(batch[image_key]).to(device, dtype=torch.float32)
            with autocast(device, dtype):
                tokens, hidden = vit(images)
            pooled = [hidden[b - 1].float().mean(dim=1) for b in blocks or ()] + [tokens.float().mean(dim=1)]
            feats.append((torch.stack(pooled, dim=1) if blocks else pooled[0]).cpu())
            label = batch[label_key] if label_key is not None else torch.zeros(len(images))
            labels.append(torch.as_tensor(label).reshape(-1).cpu())
    finally:
        vit.train(was_training)
    if not feats:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return torch.cat(feats).numpy(), torch.cat(labels).long().numpy()


def load_feature_encoder(checkpoint: str = "released", image_size: int = 128, model_size: str = "tiny") -> nn.Module:
    """A ViT classifier whose encoder holds ``checkpoint``'s weights (``released``, a release's name or a file)."""
    return maybe_load_encoder_weights(create_vit_classifier(model_size, img_size=image_size), checkpoint)


def image_features(
    images: Sequence[str | os.PathLike | torch.Tensor | np.ndarray],
    network: nn.Module,
    image_size: int = 128,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    amp: str | None = "auto",
) -> np.ndarray:
    """(N, D) encoder features of image files, or of images already decoded by
    :class:`~spcxr_monai.transforms.LoadCXR` ((1, rows, cols) arrays), read as the bundles read them.

    Args:
        images: all paths (any format the toolkit reads) or all decoded arrays.
        network: the encoder (see :func:`load_feature_encoder`).
        image_size: the encoder's input side.
    """
    decoded = bool(images) and not isinstance(images[0], (str, os.PathLike))
    prep = Compose(cxr_preprocessing(image_size, file_key=None, ensure_type=True, track_meta=False, load=not decoded))
    data = Dataset([{CommonKeys.IMAGE: image if decoded else str(image)} for image in images], prep)
    features, _ = encoder_features(
        network.to(device), DataLoader(data, batch_size=batch_size), device=device, amp=amp, label_key=None
    )
    return features
