"""ViT classifier for fine-tuning a GMML encoder: MONAI ``ViT`` + mean-pooled tokens + linear head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import UNETR, ViT
from monai.utils import ensure_tuple_rep
from torch import nn

from spcxr_monai.networks.gmml_vit import VIT_SIZES

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
        if spatial_dims != 2:
            raise ValueError(f"ViTClassifier is 2D only, got spatial_dims={spatial_dims}.")
        self.img_size = ensure_tuple_rep(img_size, 2)
        self.patch_size = ensure_tuple_rep(patch_size, 2)
        self.grid_size = tuple(i // p for i, p in zip(self.img_size, self.patch_size))
        self.vit = ViT(
            in_channels=in_channels,
            img_size=self.img_size,
            patch_size=self.patch_size,
            hidden_size=hidden_size,
            mlp_dim=mlp_dim,
            num_layers=num_layers,
            num_heads=num_heads,
            proj_type="conv",
            classification=False,
            dropout_rate=dropout_rate,
            spatial_dims=2,
            qkv_bias=qkv_bias,
        )
        self.head = nn.Sequential(nn.Dropout(head_dropout), nn.Linear(hidden_size, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens, _ = self.vit(x)
        return self.head(tokens.mean(dim=1))


def create_vit_classifier(size: str = "small", **kwargs) -> ViTClassifier:
    """A :class:`ViTClassifier` of a named size (``tiny``, ``small``, ``base``); kwargs override."""
    if size not in VIT_SIZES:
        raise ValueError(f"unknown ViT size {size!r}; choose one of {sorted(VIT_SIZES)}.")
    return ViTClassifier(**{**VIT_SIZES[size], **kwargs})


def create_unetr(
    size: str = "small",
    img_size: Sequence[int] | int = 224,
    in_channels: int = 1,
    out_channels: int = 2,
    feature_size: int = 16,
    **kwargs,
) -> UNETR:
    """A 2D MONAI ``UNETR`` whose ``vit`` has the layout of a named GMML size (patch 16, 12 blocks, qkv bias)."""
    if size not in VIT_SIZES:
        raise ValueError(f"unknown ViT size {size!r}; choose one of {sorted(VIT_SIZES)}.")
    dims = {k: v for k, v in VIT_SIZES[size].items() if k != "num_layers"}  # UNETR always has 12 blocks
    return UNETR(
        in_channels=in_channels,
        out_channels=out_channels,
        img_size=ensure_tuple_rep(img_size, 2),
        feature_size=feature_size,
        proj_type="conv",
        spatial_dims=2,
        qkv_bias=True,
        **{**dims, **kwargs},
    )
