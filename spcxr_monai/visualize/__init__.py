"""Saliency for the ViT encoders."""

from spcxr_monai.visualize.attention_rollout import attention_rollout

__all__ = ["attention_rollout"]
