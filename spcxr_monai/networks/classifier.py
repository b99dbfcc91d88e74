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

    Args:
        num_classes: number of logits.
        head_dropout: dropout before the linear head.
        encoder_args: the encoder's, as :class:`ViTEncoderModel` (``img_size``, ``hidden_size``, ...).

    Forward: (B, in_channels, H, W) -> logits (B, num_classes).
    """

    def __init__(self, num_classes: int = 3, head_dropout: float = 0.0, **encoder_args: Any) -> None:
        super().__init__(**encoder_args)
        hidden_size = self.vit.norm.normalized_shape[0]
        self.head = nn.Sequential(nn.Dropout(head_dropout), nn.Linear(hidden_size, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(super().forward(x).mean(dim=1))


def create_vit_classifier(size: str = "small", **kwargs) -> ViTClassifier:
    """A :class:`ViTClassifier` of a named size (``tiny``, ``small``, ``base``); kwargs override."""
    return ViTClassifier(**{**size_config(size), **kwargs})
