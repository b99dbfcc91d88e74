"""ViT classifier for fine-tuning a GMML encoder: the shared ViT encoder + mean-pooled tokens + linear head."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from spcxr_monai.networks.encoder import ViTEncoderModel, size_config

__all__ = ["ViTClassifier", "create_vit_classifier"]


class ViTClassifier(ViTEncoderModel):
    """Image classifier on a MONAI ``ViT`` encoder that returns logits only.

    MONAI's own ``ViT(classification=True)`` returns ``(logits, hidden_states)`` and adds a Tanh and a
    class token that GMML does not pretrain; this wrapper mean-pools the final (normed) patch tokens
    instead, as GMML's linear-probe and fine-tuning heads do, so the encoder matches the pretrained
    one key for key.

    ``feature_block=k`` pools the tokens after block ``k`` instead (1-based): masked-image pretraining
    leaves the most linearly separable features of a small ViT in its middle blocks (TinyMIM; blocks 7-11
    of 12 for ours, ``experiments/results/frozen_probe_blocks.md``), so a linear probe reads them there.
    The blocks after ``k`` and the final norm are not run and are frozen (they would get no gradient),
    and the pooled features are standardised by a BatchNorm without affine before the head, as MAE's
    linear probe does (the raw residual stream is not normed).

    Args:
        num_classes: number of logits.
        head_dropout: dropout before the linear head.
        feature_block: the block whose tokens are pooled; None: the final normed tokens.
        encoder_args: the encoder's, as :class:`ViTEncoderModel` (``img_size``, ``hidden_size``, ...).

    Forward: (B, in_channels, H, W) -> logits (B, num_classes).
    """

    def __init__(
        self, num_classes: int = 3, head_dropout: float = 0.0, feature_block: int | None = None, **encoder_args: Any
    ) -> None:
        super().__init__(**encoder_args)
        hidden_size = self.vit.norm.normalized_shape[0]
        depth = len(self.vit.blocks)
        if feature_block is not None and not 1 <= feature_block <= depth:
            raise ValueError(f"feature_block must lie in 1..{depth} (the encoder's blocks), got {feature_block}.")
        self.feature_block = feature_block
        head: list[nn.Module] = [nn.Dropout(head_dropout), nn.Linear(hidden_size, num_classes)]
        if feature_block is not None:
            # kept in the weights, so that inference rebuilds the same network (trained_sizes)
            self.register_buffer("pooled_block", torch.tensor(feature_block))
            head.insert(0, nn.BatchNorm1d(hidden_size, affine=False))
            for unused in [*self.vit.blocks[feature_block:], self.vit.norm]:
                unused.requires_grad_(False)
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.feature_block is None:
            return self.head(super().forward(x).mean(dim=1))
        tokens = self.vit.patch_embedding(x)
        for block in self.vit.blocks[: self.feature_block]:
            tokens = block(tokens)
        return self.head(tokens.mean(dim=1))


def create_vit_classifier(size: str = "small", **kwargs) -> ViTClassifier:
    """A :class:`ViTClassifier` of a named size (``tiny``, ``small``, ``base``); kwargs override."""
    return ViTClassifier(**{**size_config(size), **kwargs})
