"""The GMML ViT: MONAI's ``ViT`` encoder plus the light reconstruction head of GMML.

Named sizes (:data:`spcxr_monai.networks.encoder.VIT_SIZES`) follow timm / DeiT: ``tiny``, ``small``,
``base``; :func:`create_gmml_vit` builds one by name; every constructor argument stays a config value
for bundle JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.utils import ensure_tuple_rep
from torch import nn

from spcxr_monai.networks.encoder import ViTEncoderModel, size_config

__all__ = ["GMMLViT", "ReconstructionHead", "create_gmml_vit", "default_reconstruction_blocks"]


def default_reconstruction_blocks(num_layers: int) -> tuple[int, ...]:
    """GMML averages blocks 6, 8, 10, 12 of a 12-block ViT: the same relative depths for any depth (1-based)."""
    return tuple(sorted({max(1, round(num_layers * k / 6)) for k in (3, 4, 5, 6)}))


class ReconstructionHead(nn.Module):
    """GMML's light decoder: LayerNorm, three Linear+GELU, one ConvTranspose2d (kernel = stride = patch).

    The transposed convolution keeps its module (and its state-dict keys, as GMML's reference code);
    its forward is computed as the equivalent per-token matrix product.

    Args:
        hidden_size: token width D.
        patch_size: ViT patch size (pixels).
        out_channels: image channels to reconstruct.

    Forward: tokens (B, N, D) with N = h * w, row-major over the patch grid, and the grid ``(h, w)``
    -> image (B, out_channels, h * patch, w * patch).
    """

    def __init__(self, hidden_size: int, patch_size: Sequence[int] | int, out_channels: int = 1) -> None:
        super().__init__()
        patch = ensure_tuple_rep(patch_size, 2)
        self.norm = nn.LayerNorm(hidden_size)
        self.mlp = nn.Sequential(*[m for _ in range(3) for m in (nn.Linear(hidden_size, hidden_size), nn.GELU())])
        self.to_pixels = nn.ConvTranspose2d(hidden_size, out_channels, kernel_size=patch, stride=patch)

    def forward(self, tokens: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
        x = self.mlp(self.norm(tokens))
        # A transposed convolution whose kernel equals its stride maps each token to its own patch of
        # pixels: one matrix product with the same weights, then the patches laid out. The CPU's
        # conv_transpose2d kernel took 13% of a ViT-Ti/16 GMML step at 128 px; the product takes little.
        weight, bias = self.to_pixels.weight, self.to_pixels.bias  # (D, C, ph, pw), (C,)
        d, c, ph, pw = weight.shape
        (h, w), b = grid, x.shape[0]
        patches = nn.functional.linear(
            x,
            weight.reshape(d, c * ph * pw).t(),
            bias.repeat_interleave(ph * pw),  # type: ignore[union-attr]  # bias=True
        )
        return patches.reshape(b, h, w, c, ph, pw).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h * ph, w * pw)


class GMMLViT(ViTEncoderModel):
    """Vision Transformer for group-masked model learning (GMML) on 2D images.

    The encoder is the shared :class:`ViTEncoderModel` (a plain MONAI ``ViT``, no class token) so its
    weights move unchanged into a MONAI ``ViT``, :class:`spcxr_monai.networks.ViTClassifier` or
    ``UNETR.vit`` (:func:`spcxr_monai.networks.load_encoder_weights`).

    Args:
        reconstruction_blocks: 1-based blocks whose token outputs are averaged into the head; default
            :func:`default_reconstruction_blocks` (6, 8, 10, 12 for 12 blocks).
        encoder_args: the encoder's, as :class:`ViTEncoderModel` (``in_channels``, ``img_size``, ...).

    Forward: (B, in_channels, H, W) -> reconstruction (B, in_channels, H, W).
    """

    def __init__(self, reconstruction_blocks: Sequence[int] | None = None, **encoder_args: Any) -> None:
        super().__init__(**encoder_args)
        num_layers = len(self.vit.blocks)
        self.reconstruction_blocks = tuple(reconstruction_blocks or default_reconstruction_blocks(num_layers))
        if not all(1 <= b <= num_layers for b in self.reconstruction_blocks):
            raise ValueError(f"reconstruction_blocks {self.reconstruction_blocks} must be in 1..{num_layers}.")
        in_channels = self.vit.patch_embedding.patch_embeddings.in_channels
        self.head = ReconstructionHead(
            self.vit.norm.normalized_shape[0],
            self.patch_size,
            in_channels,  # type: ignore[arg-type]  # an int of Conv2d
        )
        # the head reads the blocks' outputs, not the ViT's final norm: frozen, so DDP sees no unused
        # parameters; fine-tuning networks (classifier, UNETR) train it from its initial (1, 0)
        self.vit.norm.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, hidden_states = self.vit(x)
        tokens = torch.stack([hidden_states[b - 1] for b in self.reconstruction_blocks]).mean(0)
        return self.head(tokens, self.grid_size)


def create_gmml_vit(size: str = "small", **kwargs) -> GMMLViT:
    """Build a :class:`GMMLViT` of a named size (``tiny``, ``small``, ``base``); kwargs override.

    Example (bundle JSON): ``{"_target_": "spcxr_monai.networks.create_gmml_vit", "size": "small",
    "img_size": 224}``.
    """
    return GMMLViT(**{**size_config(size), **kwargs})
