"""Moving a pretrained GMML encoder into a ViT, a ViTClassifier or a UNETR (one function, one place)."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from monai.networks.nets import ViT
from torch import nn

from spcxr_monai.networks.encoder import VIT_SIZES
from spcxr_monai.pretrained import resolve_checkpoint

__all__ = [
    "checkpoint_state",
    "trained_sizes",
    "encoder_of",
    "encoder_state_dict",
    "maybe_load_gmml_weights",
    "resize_position_embeddings",
    "load_encoder_weights",
    "maybe_load_encoder_weights",
]

logger = logging.getLogger(__name__)
PATCH_WEIGHT = "patch_embedding.patch_embeddings.weight"
POS_EMBED = "patch_embedding.position_embeddings"
TASK_KEYS = ("cls_token", "classification_head.")  # belong to a task, not to the pretrained encoder
STATE_KEYS = ("network", "model", "state_dict", "net")


def checkpoint_state(source: str | os.PathLike | Mapping | nn.Module) -> dict[str, torch.Tensor]:
    """The whole state dict held by a checkpoint file, a MONAI ``CheckpointSaver`` dict, a state dict
    or a module, with DDP ``module.`` prefixes removed. A path may be ``"released"`` (the encoder shipped
    in :mod:`spcxr_monai.pretrained`)."""
    if isinstance(source, (str, os.PathLike)):
        source = resolve_checkpoint(source)
        if not os.path.isfile(source):
            raise FileNotFoundError(f"{source}: pretrained checkpoint not found")
        source = torch.load(source, map_location="cpu", weights_only=True)
    if isinstance(source, nn.Module):
        source = source.state_dict()
    state = dict(source)  # type: ignore[arg-type]  # a mapping by now: files are loaded, modules read above
    for key in STATE_KEYS:
        if key in state and isinstance(state[key], Mapping):
            state = dict(state[key])
            break
    return {k.removeprefix("module."): v for k, v in state.items()}


def encoder_state_dict(source: str | os.PathLike | Mapping | nn.Module) -> dict[str, torch.Tensor]:
    """The ViT encoder weights of a checkpoint, state dict or module (see :func:`checkpoint_state`),
    keyed as ``monai.networks.nets.ViT``: a :class:`GMMLViT` / ``ViTClassifier`` / ``UNETR`` state dict
    (``vit.`` prefix) or a bare ViT state dict.
    """
    state = checkpoint_state(source)
    if any(k.startswith("vit.") for k in state):
        state = {k[len("vit.") :]: v for k, v in state.items() if k.startswith("vit.")}
    if PATCH_WEIGHT not in state:
        raise ValueError(
            f"no ViT encoder found in the checkpoint (no '{PATCH_WEIGHT}' key; keys: {list(state)[:5]}...)"
        )
    return state


def _grid(n_tokens: int, grid: Sequence[int] | None, what: str) -> tuple[int, int]:
    if grid is not None:
        grid = tuple(int(g) for g in grid)
        if math.prod(grid) != n_tokens:
            raise ValueError(f"{what} grid {grid} does not hold {n_tokens} position embeddings")
        return grid  # type: ignore[return-value]
    side = math.isqrt(n_tokens)
    if side * side != n_tokens:
        raise ValueError(f"{what} has {n_tokens} patches, not a square grid: give its grid explicitly")
    return side, side


def resize_position_embeddings(
    pos: torch.Tensor, new_grid: Sequence[int], old_grid: Sequence[int] | None = None
) -> torch.Tensor:
    """Bicubically resize (1, N, D) position embeddings from ``old_grid`` to ``new_grid`` (h, w)."""
    old = _grid(pos.shape[1], old_grid, "the checkpoint")
    d = pos.shape[-1]
    grid = pos.reshape(1, *old, d).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=tuple(new_grid), mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(1, -1, d).to(pos.dtype)


def encoder_of(target: nn.Module) -> ViT:
    """The MONAI ViT encoder of ``target``: itself, or its ``.vit`` (GMMLViT, ViTClassifier, UNETR)."""
    if isinstance(target, ViT):
        return target
    vit = getattr(target, "vit", None)
    if isinstance(vit, ViT):
        return vit
    raise TypeError(f"{type(target).__name__} has no MONAI ViT encoder (expected a ViT or a module with .vit)")


def _target_grid(target: nn.Module, vit: ViT) -> tuple[int, int]:
    for attr in ("grid_size", "feat_size"):  # GMMLViT / ViTClassifier, UNETR
        if hasattr(target, attr):
            return tuple(getattr(target, attr))
    return _grid(vit.patch_embedding.position_embeddings.shape[1], None, "the target")


def load_encoder_weights(
    target: nn.Module,
    source: str | os.PathLike | Mapping | nn.Module,
    interpolate_pos_embed: bool = True,
    source_grid: Sequence[int] | None = None,
) -> nn.Module:
    """Load a pretrained encoder into ``target``'s MONAI ViT, strictly.

    Every encoder weight of ``target`` must come from the source with the same shape; only a class
    token / MONAI classification head (task parts) may be absent. Position embeddings are resized
    bicubically when the image size (patch grid) differs.

    Args:
        target: a ``ViT``, or a module holding one as ``.vit`` (GMMLViT, ViTClassifier, UNETR).
        source: checkpoint path, state dict or module (see :func:`encoder_state_dict`).
        interpolate_pos_embed: resize position embeddings on a grid mismatch; False raises instead.
        source_grid: the checkpoint's patch grid (h, w) when it is not square.

    Returns:
        ``target``, for chaining in bundle configs.

    Raises:
        ValueError: the patch size, channels, hidden size, depth or image size does not match, or a
            weight is missing / unexpected. The message says which.
    """
    vit = encoder_of(target)
    state = encoder_state_dict(source)
    own = vit.state_dict()
    src_w, dst_w = state[PATCH_WEIGHT], own[PATCH_WEIGHT]
    if src_w.shape[2:] != dst_w.shape[2:]:
        raise ValueError(f"patch size mismatch: checkpoint {tuple(src_w.shape[2:])}, target {tuple(dst_w.shape[2:])}")
    if src_w.shape[0] != dst_w.shape[0]:
        raise ValueError(f"hidden size mismatch: checkpoint {src_w.shape[0]}, target {dst_w.shape[0]}")
    if src_w.shape[1] != dst_w.shape[1]:
        raise ValueError(f"input channel mismatch: checkpoint {src_w.shape[1]}, target {dst_w.shape[1]}")
    src_depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    if src_depth != len(vit.blocks):
        raise ValueError(f"depth mismatch: checkpoint has {src_depth} transformer blocks, target {len(vit.blocks)}")
    if POS_EMBED in state and state[POS_EMBED].shape != own[POS_EMBED].shape:
        new_grid = _target_grid(target, vit)
        if not interpolate_pos_embed:
            raise ValueError(
                f"image size mismatch: checkpoint has {state[POS_EMBED].shape[1]} patches, target "
                f"{own[POS_EMBED].shape[1]} (grid {new_grid}); set interpolate_pos_embed=True to resize"
            )
        logger.info("resizing position embeddings %s -> grid %s", tuple(state[POS_EMBED].shape), new_grid)
        state[POS_EMBED] = resize_position_embeddings(state[POS_EMBED], new_grid, source_grid)
    missing, unexpected = vit.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(TASK_KEYS)]
    if missing or unexpected:
        raise ValueError(f"encoder weights do not match: missing {missing}, unexpected {unexpected}")
    return target


def maybe_load_encoder_weights(
    target: nn.Module,
    checkpoint: str | os.PathLike | None,
    freeze: bool = False,
    device: torch.device | str | None = None,
) -> nn.Module:
    """:func:`load_encoder_weights` when ``checkpoint`` is set, else ``target`` as it is (training from
    scratch); lets a bundle switch the initialisation with one config value.

    Args:
        target: as :func:`load_encoder_weights`.
        checkpoint: a checkpoint path, ``"released"`` for the encoder shipped with the package
            (:mod:`spcxr_monai.pretrained`), or empty / None for scratch.
        freeze: stop gradients into the encoder (a linear probe: only the head trains).
        device: where to move ``target`` afterwards (None: where it is).
    """
    checkpoint = resolve_checkpoint(checkpoint)
    if checkpoint:
        logger.info("encoder initialised from %s", checkpoint)
        load_encoder_weights(target, checkpoint)
    else:
        logger.info("encoder initialised from scratch")
    if freeze:
        encoder_of(target).requires_grad_(False)
        logger.info("encoder frozen: linear probe")
    return target.to(device) if device is not None else target


def maybe_load_gmml_weights(
    target: nn.Module, checkpoint: str | os.PathLike | None, device: torch.device | str | None = None
) -> nn.Module:
    """Initialise a :class:`GMMLViT` from a GMML checkpoint: the encoder as :func:`load_encoder_weights`
    (position embeddings resized to the target's grid) and the reconstruction head when the checkpoint
    has one (strictly), so pretraining continues from it; empty: ``target`` as it is.

    Args:
        target: a GMMLViT (a module with ``.vit`` and ``.head``).
        checkpoint: a checkpoint path, ``"released"`` or empty / None.
        device: where to move ``target`` afterwards (None: where it is).
    """
    checkpoint = resolve_checkpoint(checkpoint)
    if not checkpoint:
        logger.info("GMML ViT initialised from scratch")
        return target.to(device) if device is not None else target
    state = checkpoint_state(checkpoint)  # read once: encoder and head come from the same dict
    load_encoder_weights(target, state)
    head = {k[len("head.") :]: v for k, v in state.items() if k.startswith("head.")}
    if head:
        try:
            target.head.load_state_dict(head, strict=True)  # type: ignore[union-attr]  # casts fp16 to the head's dtype
        except RuntimeError as e:
            raise ValueError(f"{checkpoint}: reconstruction head does not match the target ({e})") from e
    logger.info("GMML ViT initialised from %s (%s)", checkpoint, "encoder and head" if head else "encoder only")
    return target.to(device) if device is not None else target


def trained_sizes(
    checkpoint: str | os.PathLike,
    model_size: str = "tiny",
    image_size: int = 128,
    patch_size: int = 16,
    feature_size: int = 16,
) -> dict:
    """The sizes of the network a checkpoint holds, read off its weights, so that inference builds the
    network it is about to load (one place for them: the trained file, not copies in configs).

    ``model_size`` from the token width (:data:`VIT_SIZES`), ``patch_size`` from the patch embedding,
    ``image_size`` from the number of position embeddings (square images), ``feature_size`` from a
    UNETR's first encoder block, ``feature_block`` from a classifier that pools a middle block (None: the
    final tokens). The arguments are used where the checkpoint does not exist yet (loading
    it then fails with its own error) or does not hold that part (no UNETR: ``feature_size``).

    Raises:
        ValueError: the checkpoint's token width is none of the named sizes.
    """
    sizes = {
        "model_size": model_size,
        "image_size": image_size,
        "patch_size": patch_size,
        "feature_size": feature_size,
        "feature_block": None,
    }
    if not os.path.isfile(resolve_checkpoint(checkpoint)):
        return sizes
    state = checkpoint_state(checkpoint)
    patches = state.get(f"vit.{PATCH_WEIGHT}")
    if patches is None:
        return sizes
    width, patch = int(patches.shape[0]), int(patches.shape[-1])
    named = [name for name, dims in VIT_SIZES.items() if dims["hidden_size"] == width]
    if not named:
        raise ValueError(f"{checkpoint}: token width {width} is none of the named ViT sizes {sorted(VIT_SIZES)}")
    tokens = int(state[f"vit.{POS_EMBED}"].shape[1])
    sizes.update(model_size=named[0], patch_size=patch, image_size=math.isqrt(tokens) * patch)
    if "encoder1.layer.conv1.conv.weight" in state:
        sizes["feature_size"] = int(state["encoder1.layer.conv1.conv.weight"].shape[0])
    if "pooled_block" in state:
        sizes["feature_block"] = int(state["pooled_block"])
    return sizes
