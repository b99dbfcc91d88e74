"""The one ViT encoder layout shared by pretraining and fine-tuning, and its named sizes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.networks.blocks.selfattention import SABlock
from monai.networks.blocks.transformerblock import TransformerBlock
from monai.networks.layers import DropPath
from monai.networks.nets import ViT
from monai.utils import ensure_tuple_rep
from torch import nn

__all__ = [
    "VIT_SIZES",
    "DropPathTransformerBlock",
    "ViTEncoderModel",
    "drop_path_blocks",
    "freeze_unused_parameters",
    "set_fused_attention",
    "size_config",
]

# timm / DeiT sizes, all with 12 blocks, MLP 4x hidden and qkv bias
VIT_SIZES: dict[str, dict[str, int]] = {
    "tiny": {"hidden_size": 192, "mlp_dim": 768, "num_layers": 12, "num_heads": 3},
    "small": {"hidden_size": 384, "mlp_dim": 1536, "num_layers": 12, "num_heads": 6},
    "base": {"hidden_size": 768, "mlp_dim": 3072, "num_layers": 12, "num_heads": 12},
}


def size_config(size: str) -> dict[str, int]:
    """The ViT dimensions of a named size (``tiny``, ``small``, ``base``)."""
    if size not in VIT_SIZES:
        raise ValueError(f"unknown ViT size {size!r}; choose one of {sorted(VIT_SIZES)}.")
    return dict(VIT_SIZES[size])


def set_fused_attention(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Switch MONAI's self-attention blocks in ``module`` to PyTorch's fused ``scaled_dot_product_attention``.

    Fused attention never materialises the (N, N) attention matrix: faster and leaner in training and
    inference, but ``save_attn`` (attention maps) needs the unfused path, so
    :func:`spcxr_monai.visualize.attention_rollout` switches it off for its call. Blocks with attention
    dropout stay unfused, since MONAI passes ``dropout_p`` to the fused kernel in eval mode too.

    Args:
        module: any module holding ``monai.networks.blocks.SABlock`` s (ViT, UNETR, GMMLViT, ...).
        enabled: True to fuse, False for the explicit softmax(QK^T)V path.

    Returns:
        ``module``, for chaining.
    """
    for block in module.modules():
        if isinstance(block, SABlock):
            fusable = block.dropout_rate == 0 and block.rel_positional_embedding is None and not block.save_attn
            block.use_flash_attention = bool(enabled and fusable)
    return module


def freeze_unused_parameters(vit: nn.Module) -> nn.Module:
    """Freeze the ``norm_cross_attn`` of MONAI transformer blocks built without cross-attention.

    MONAI's ``TransformerBlock`` creates that LayerNorm in any case and uses it only with
    cross-attention; its parameters never get a gradient, which ``DistributedDataParallel`` refuses
    ("parameters that were not used in producing loss"). Frozen, the state dict is unchanged.
    """
    for block in getattr(vit, "blocks", []):
        if not getattr(block, "with_cross_attention", False) and hasattr(block, "norm_cross_attn"):
            block.norm_cross_attn.requires_grad_(False)
    return vit


class DropPathTransformerBlock(TransformerBlock):
    """MONAI's ``TransformerBlock`` with stochastic depth on both residual branches (timm's ``Block``).

    In training, each sample's attention and MLP branches are dropped with probability ``drop_path``
    (and the kept ones scaled by ``1 / (1 - drop_path)``), the regulariser of BEiT / MAE fine-tuning. It
    adds no parameter, so its state dict is ``TransformerBlock``'s key for key; in eval mode it is
    ``TransformerBlock`` exactly.

    Args:
        drop_path: probability of dropping a residual branch per sample, in [0, 1).
        args, kwargs: ``TransformerBlock``'s.

    Forward: (B, N, hidden_size) -> (B, N, hidden_size).
    """

    def __init__(self, *args: Any, drop_path: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not 0 <= drop_path < 1:
            raise ValueError(f"drop_path must be in [0, 1), got {drop_path}.")
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None, attn_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), attn_mask=attn_mask))
        if self.with_cross_attention:
            x = x + self.drop_path(self.cross_attn(self.norm_cross_attn(x), context=context))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def drop_path_blocks(
    rate: float,
    num_layers: int,
    hidden_size: int,
    mlp_dim: int,
    num_heads: int,
    dropout_rate: float = 0.0,
    qkv_bias: bool = True,
) -> nn.ModuleList:
    """The blocks of a ViT with stochastic depth rising linearly from 0 (first block) to ``rate`` (last),
    as timm / BEiT / MAE: the deepest, most task-specific blocks are dropped most often.

    Replaces a MONAI ``ViT``'s (or ``UNETR.vit``'s) ``blocks`` at construction, before weights are loaded:
    same arguments, same parameters, same state dict keys.
    """
    rates = torch.linspace(0, rate, num_layers).tolist()
    return nn.ModuleList(
        DropPathTransformerBlock(hidden_size, mlp_dim, num_heads, dropout_rate, qkv_bias=qkv_bias, drop_path=r)
        for r in rates
    )


class ViTEncoderModel(nn.Module):
    """Base of the networks on one ViT encoder (GMML pretraining, classifier): the encoder built once.

    A 2D MONAI ``ViT`` without class token (conv patch embedding, fused attention) under ``self.vit``,
    so its weights move key for key between the networks built on it, MONAI's ``ViT`` and ``UNETR.vit``;
    subclasses add a head (timm-style: the encoder's arguments once, here).

    Args:
        in_channels: image channels (1 for CXR).
        img_size: (H, W) or one int; both divisible by ``patch_size``.
        patch_size: ViT patch size.
        hidden_size: token width (see :data:`VIT_SIZES`).
        mlp_dim: transformer MLP width.
        num_layers: transformer blocks.
        num_heads: attention heads.
        qkv_bias: bias in the qkv projection (as timm / GMML).
        dropout_rate: dropout in the transformer.
        drop_path_rate: stochastic depth of the last block (linear from 0 at the first, see
            :func:`drop_path_blocks`); 0 keeps MONAI's plain blocks. A fine-tuning regulariser.
        spatial_dims: only 2 is supported.

    Attributes: ``vit``, ``img_size``, ``patch_size`` and ``grid_size`` (tokens per side), as (H, W).
    Forward (of this base): (B, in_channels, H, W) -> tokens (B, N, hidden_size) after the final norm.
    """

    def __init__(
        self,
        in_channels: int = 1,
        img_size: Sequence[int] | int = 224,
        patch_size: Sequence[int] | int = 16,
        hidden_size: int = 384,
        mlp_dim: int = 1536,
        num_layers: int = 12,
        num_heads: int = 6,
        qkv_bias: bool = True,
        dropout_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if spatial_dims != 2:
            raise ValueError(f"{name} is 2D only, got spatial_dims={spatial_dims}.")
        self.img_size = ensure_tuple_rep(img_size, 2)
        self.patch_size = ensure_tuple_rep(patch_size, 2)
        if any(i % p for i, p in zip(self.img_size, self.patch_size)):
            raise ValueError(f"{name}: img_size {self.img_size} must be divisible by patch_size {self.patch_size}.")
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
        if drop_path_rate > 0:
            self.vit.blocks = drop_path_blocks(
                drop_path_rate, num_layers, hidden_size, mlp_dim, num_heads, dropout_rate, qkv_bias
            )
        set_fused_attention(self.vit)
        freeze_unused_parameters(self.vit)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit(x)[0]
