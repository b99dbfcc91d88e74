"""Optimiser parameter groups as in GMML/DeiT: no weight decay on biases, norms and embeddings."""

from __future__ import annotations

from torch import nn

__all__ = ["param_groups_weight_decay"]

NO_DECAY_NAMES = ("position_embeddings", "cls_token")


def param_groups_weight_decay(network: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: weights with ``weight_decay``, and 1-D parameters (biases, norm scales) and
    position embeddings / class tokens without.

    Args:
        network: the model.
        weight_decay: decay of the first group.
    """
    decay, no_decay = [], []
    for name, param in network.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.endswith(".bias") or any(n in name for n in NO_DECAY_NAMES):
            no_decay.append(param)
        else:
            decay.append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
