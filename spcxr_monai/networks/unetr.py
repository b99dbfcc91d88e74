"""UNETR for lung segmentation on the GMML encoder's layout."""

from __future__ import annotations

from collections.abc import Sequence

from monai.networks.nets import UNETR
from monai.utils import ensure_tuple_rep

from spcxr_monai.networks.encoder import drop_path_blocks, freeze_unused_parameters, set_fused_attention, size_config

__all__ = ["create_unetr"]


def create_unetr(
    size: str = "small",
    img_size: Sequence[int] | int = 224,
    in_channels: int = 1,
    out_channels: int = 2,
    feature_size: int = 16,
    drop_path_rate: float = 0.0,
    **kwargs,
) -> UNETR:
    """A 2D MONAI ``UNETR`` whose ``vit`` has the layout of a named GMML size (patch 16, 12 blocks, qkv bias),
    with fused attention.

    Args:
        size: ``tiny``, ``small`` or ``base`` (see :data:`spcxr_monai.networks.VIT_SIZES`).
        img_size: (H, W) or one int, divisible by 16.
        in_channels: image channels.
        out_channels: segmentation classes (background included).
        feature_size: UNETR's decoder width.
        drop_path_rate: stochastic depth of the encoder's last block (see
            :func:`spcxr_monai.networks.encoder.drop_path_blocks`); 0: MONAI's plain blocks.
        kwargs: more of ``UNETR``'s arguments; they override the named size.

    Forward: (B, in_channels, H, W) -> logits (B, out_channels, H, W).
    """
    dims = {k: v for k, v in size_config(size).items() if k != "num_layers"}  # UNETR always has 12 blocks
    dims = {**dims, **kwargs}
    unetr = UNETR(
        in_channels=in_channels,
        out_channels=out_channels,
        img_size=ensure_tuple_rep(img_size, 2),
        feature_size=feature_size,
        proj_type="conv",
        spatial_dims=2,
        qkv_bias=True,
        **dims,  # type: ignore[arg-type]  # MONAI ViT sizes: hidden_size, mlp_dim, num_layers, num_heads
    )
    if drop_path_rate > 0:
        unetr.vit.blocks = drop_path_blocks(
            drop_path_rate,
            len(unetr.vit.blocks),
            dims["hidden_size"],
            dims["mlp_dim"],
            dims["num_heads"],
            dims.get("dropout_rate", 0.0),
        )
    freeze_unused_parameters(unetr.vit)
    return set_fused_attention(unetr)  # type: ignore[return-value]  # the same module, returned
