"""UNETR for lung segmentation on the GMML encoder's layout."""

from __future__ import annotations

from collections.abc import Sequence

from monai.networks.nets import UNETR
from monai.utils import ensure_tuple_rep

from spcxr_monai.networks.encoder import freeze_unused_parameters, set_fused_attention, size_config

__all__ = ["create_unetr"]


def create_unetr(
    size: str = "small",
    img_size: Sequence[int] | int = 224,
    in_channels: int = 1,
    out_channels: int = 2,
    feature_size: int = 16,
    **kwargs,
) -> UNETR:
    """A 2D MONAI ``UNETR`` whose ``vit`` has the layout of a named GMML size (patch 16, 12 blocks, qkv bias),
    with fused attention."""
    dims = {k: v for k, v in size_config(size).items() if k != "num_layers"}  # UNETR always has 12 blocks
    unetr = UNETR(
        in_channels=in_channels,
        out_channels=out_channels,
        img_size=ensure_tuple_rep(img_size, 2),
        feature_size=feature_size,
        proj_type="conv",
        spatial_dims=2,
        qkv_bias=True,
        **{**dims, **kwargs},
    )
    freeze_unused_parameters(unetr.vit)
    return set_fused_attention(unetr)
