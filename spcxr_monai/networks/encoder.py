"""The one ViT encoder layout shared by pretraining and fine-tuning, and its named sizes."""

from __future__ import annotations

from collections.abc import Sequence

from monai.networks.blocks.selfattention import SABlock
from monai.networks.nets import ViT
from monai.utils import ensure_tuple_rep
from torch import nn

__all__ = ["VIT_SIZES", "size_config", "build_vit_encoder", "set_fused_attention"]

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


def build_vit_encoder(
    owner: str,
    in_channels: int,
    img_size: Sequence[int] | int,
    patch_size: Sequence[int] | int,
    hidden_size: int,
    mlp_dim: int,
    num_layers: int,
    num_heads: int,
    qkv_bias: bool,
    dropout_rate: float,
    spatial_dims: int,
) -> tuple[ViT, tuple[int, int], tuple[int, int], tuple[int, int]]:
    """A 2D MONAI ``ViT`` without class token (conv patch embedding), and its image, patch and grid sizes.

    Args:
        owner: name of the network building it, for error messages.
        (the rest): as ``monai.networks.nets.ViT``; ``spatial_dims`` must be 2.

    Returns:
        ``(vit, img_size, patch_size, grid_size)`` with sizes as (H, W) tuples; the ViT uses fused
        attention (:func:`set_fused_attention`).
    """
    if spatial_dims != 2:
        raise ValueError(f"{owner} is 2D only, got spatial_dims={spatial_dims}.")
    img = ensure_tuple_rep(img_size, 2)
    patch = ensure_tuple_rep(patch_size, 2)
    if any(i % p for i, p in zip(img, patch)):
        raise ValueError(f"img_size {img} must be divisible by patch_size {patch}.")
    vit = ViT(
        in_channels=in_channels,
        img_size=img,
        patch_size=patch,
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
    set_fused_attention(vit)
    freeze_unused_parameters(vit)
    return vit, img, patch, tuple(i // p for i, p in zip(img, patch))
