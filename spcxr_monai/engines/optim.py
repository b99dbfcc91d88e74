"""Optimiser parameter groups: no weight decay on biases, norms and embeddings (GMML / DeiT), and
layer-wise learning-rate decay for fine-tuning a pretrained ViT (BEiT / MAE)."""

from __future__ import annotations

import re

from torch import nn

__all__ = ["param_groups_weight_decay", "param_groups_layer_decay", "vit_layer_id"]

NO_DECAY_NAMES = ("position_embeddings", "cls_token")
_BLOCK = re.compile(r"(?:^|\.)vit\.blocks\.(\d+)\.|^blocks\.(\d+)\.")


def _no_decay(name: str, param: nn.Parameter) -> bool:
    return param.ndim <= 1 or name.endswith(".bias") or any(n in name for n in NO_DECAY_NAMES)


def param_groups_weight_decay(network: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: weights with ``weight_decay``, and 1-D parameters (biases, norm scales) and
    position embeddings / class tokens without. Frozen parameters are left out.

    Args:
        network: the model.
        weight_decay: decay of the first group.
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, param in network.named_parameters():
        if param.requires_grad:
            (no_decay if _no_decay(name, param) else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def vit_layer_id(name: str, num_layers: int) -> int:
    """Depth of a parameter for layer-wise decay: 0 for the patch / position embedding, ``i + 1`` for
    transformer block ``i``, ``num_layers + 1`` for everything after the encoder (final norm, heads,
    UNETR's decoder). Works for a bare MONAI ``ViT`` and for modules holding one as ``.vit``."""
    match = _BLOCK.search(name)
    if match:
        return int(match.group(1) or match.group(2)) + 1
    if name.startswith(("patch_embedding.", "vit.patch_embedding.", "cls_token", "vit.cls_token")):
        return 0
    return num_layers + 1


def param_groups_layer_decay(
    network: nn.Module, lr: float, weight_decay: float, layer_decay: float = 0.75
) -> list[dict]:
    """AdamW groups with layer-wise learning-rate decay, as BEiT / MAE fine-tune a pretrained ViT.

    The head (and anything above the encoder) trains at ``lr``; block ``i`` of an ``L``-block encoder at
    ``lr * layer_decay ** (L - i)``; the patch embedding at ``lr * layer_decay ** (L + 1)``, where ``L`` is
    the deepest block with trainable parameters (a classifier reading block 8 decays as an 8-block encoder). Early layers,
    which hold the most general pretrained features, move least. Each group sets its own ``lr`` (MONAI /
    torch schedulers scale every group's initial lr by the same factor). Weight decay is split as in
    :func:`param_groups_weight_decay`; frozen parameters are left out.

    Args:
        network: a model whose encoder is a MONAI ``ViT`` (itself or ``.vit``: ViTClassifier, UNETR, GMMLViT).
        lr: learning rate of the head.
        weight_decay: decay of the weight matrices.
        layer_decay: per-block factor in (0, 1]; 1 gives every parameter ``lr``.
    """
    if not 0.0 < layer_decay <= 1.0:
        raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}.")
    # the depth that trains: an encoder read at a middle block (feature_block) decays from that block down
    trained = (n for n, p in network.named_parameters() if p.requires_grad)
    num_layers = 1 + max((int(m.group(1) or m.group(2)) for m in map(_BLOCK.search, trained) if m), default=-1)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in network.named_parameters():
        if not param.requires_grad:
            continue
        layer, no_decay = vit_layer_id(name, num_layers), _no_decay(name, param)
        group = groups.setdefault(
            (layer, no_decay),
            {
                "params": [],
                "weight_decay": 0.0 if no_decay else weight_decay,
                "lr": lr * layer_decay ** (num_layers + 1 - layer),
                "layer_id": layer,
            },
        )
        group["params"].append(param)
    return [groups[key] for key in sorted(groups)]
