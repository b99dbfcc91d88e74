"""ViT classifier for fine-tuning a GMML encoder: MONAI ``ViT`` + mean-pooled tokens + linear head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import UNETR
from monai.utils import ensure_tuple_rep
from torch import nn

from spcxr_monai.networks.encoder import build_vit_encoder, freeze_unused_parameters, set_fused_attention, size_config

__all__ = ["ViTClassifier", "create_vit_classifier", "create_unetr"]


class ViTClassifier(nn.Module):
    """Image classifier on a MONAI ``ViT`` encoder that returns logits only.

    MONAI's own ``ViT(classification=True)`` returns ``(logits, hidden_states)`` and adds a Tanh and a
    class token that GMML does not pretrain; this wrapper mean-pools the final (normed) patch tokens
    instead, as GMML's linear-probe and fine-tuning heads do, so the encoder matches the pretrained
    one key for key.

    Args:
        in_channels: image channels.
        img_size: (H, W) or one int.
        patch_size: ViT patch size.
        num_classes: number of logits.
        hidden_size, mlp_dim, num_layers, num_heads, qkv_bias, dropout_rate: as ``monai.networks.nets.ViT``.
        head_dropout: dropout before the linear head.
        spatial_dims: only 2 is supported.

    Forward: (B, in_channels, H, W) -> logits (B, num_classes).
    """

    def __init__(
        self,
        in_channels: int = 1,
        img_size: Sequence[int] | int = 224,
        patch_size: Sequence[int] | int = 16,
        num_classes: int = 3,
        hidden_size: int = 384,
        mlp_dim: int = 1536,
        num_layers: int = 12,
        num_heads: int = 6,
        qkv_bias: bool = True,
        dropout_rate: float = 0.0,
        head_dropout: float = 0.0,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        self.vit, self.img_size, self.patch_size, self.grid_size = build_vit_encoder(
            "ViTClassifier", in_channels, img_size, patch_size, hidden_size, mlp_dim, num_layers, num_heads,
            qkv_bias, dropout_rate, spatial_dims,
        )
        self.head = nn.Sequential(nn.Dropout(head_dropout), nn.Linear(hidden_size, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens, _ = self.vit(x)
        return self.head(tokens.mean(dim=1))


def create_vit_classifier(size: str = "small", **kwargs) -> ViTClassifier:
    """A :class:`ViTClassifier` of a named size (``tiny``, ``small``, ``base``); kwargs override."""
    return ViTClassifier(**{**size_config(size), **kwargs})


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
