"""Attention rollout (Abnar & Zuidema, 2020) for MONAI ViT encoders without a class token."""

# mypy: disable-error-code="union-attr,operator"
# (torch types a submodule attribute as Tensor | Module; MONAI's SABlock attributes are read and set here)

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spcxr_monai.networks.transfer import encoder_of

__all__ = ["attention_rollout"]


@torch.no_grad()
def attention_rollout(
    model: nn.Module, image: torch.Tensor, grid: tuple[int, int], discard_ratio: float = 0.0
) -> torch.Tensor:
    """Relevance of each image region to the pooled representation, from the attention maps.

    Each block's attention is averaged over heads, mixed with the residual path (``0.5 * (A + I)``,
    rows renormalised) and the blocks are multiplied in order. With mean-pooled tokens (as in
    :class:`spcxr_monai.networks.ViTClassifier`) a patch's relevance is the mean of its column.

    Args:
        model: a ``ViT`` or a module holding one as ``.vit``; its blocks keep their attention
            (``save_attn``) and leave fused attention for the call, then are restored.
        image: (1, C, H, W) input as the model expects it.
        grid: patch grid (H / patch, W / patch).
        discard_ratio: fraction of the weakest attention weights per block set to zero (0 keeps all).

    Returns:
        (H, W) relevance map in [0, 1], bilinearly upsampled from the patch grid.
    """
    vit = encoder_of(model)
    blocks = [blk.attn for blk in vit.blocks]
    previous = [(attn.save_attn, attn.use_flash_attention) for attn in blocks]
    for attn in blocks:  # the fused kernel never forms the attention matrix
        attn.save_attn, attn.use_flash_attention = True, False
    try:
        was_training = model.training
        model.eval()
        model(image)
        model.train(was_training)
        rollout = None
        for attn in blocks:
            a = attn.att_mat.mean(dim=1)[0]  # (N, N), heads averaged
            if discard_ratio > 0:
                threshold = torch.quantile(a.flatten(), discard_ratio)
                a = torch.where(a < threshold, torch.zeros_like(a), a)
            a = 0.5 * (a + torch.eye(a.shape[0], device=a.device))
            a = a / a.sum(dim=-1, keepdim=True)
            rollout = a if rollout is None else a @ rollout
    finally:
        for attn, (save, fused) in zip(blocks, previous):
            attn.save_attn, attn.use_flash_attention = save, fused
    relevance = rollout.mean(dim=0).reshape(1, 1, *grid)
    relevance = F.interpolate(relevance, size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    relevance = relevance - relevance.min()
    return relevance / relevance.max().clamp_min(1e-12)
