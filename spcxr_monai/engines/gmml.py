"""What MONAI's engines need for GMML: a batch preparation that group-masks on the device, and the loss."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.engines.utils import PrepareBatch
from monai.utils import CommonKeys
from torch import nn

from spcxr_monai.transforms.group_mask import GMML_CORRUPTIONS, GMML_MAX_BLOCK_FRAC, GMML_MAX_RATIO, group_mask_batch

__all__ = ["GMMLPrepareBatch", "MaskedL1Loss", "split_target"]


def split_target(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Undo :class:`GMMLPrepareBatch`'s packing: (B, C+1, H, W) -> clean (B, C, H, W), mask (B, 1, H, W)."""
    return target[:, :-1], target[:, -1:]


class GMMLPrepareBatch(PrepareBatch):
    """``prepare_batch`` for MONAI trainers/evaluators: corrupt the batch with GMML group masks on the device.

    Returns ``(corrupted, target)`` where ``target`` packs the clean images and the mask along the
    channel axis, (B, C+1, H, W), so MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator`` and their
    metric handlers carry it as the ``label`` unchanged (split it with :func:`split_target`).

    Args:
        image_key: key of the image batch.
        max_ratio, max_block_frac, align, corruptions: as :func:`spcxr_monai.transforms.group_mask_batch`.
        seed: seed of the mask generator (created on the batch's device at first use).
        reset_each_epoch: reseed at every epoch start of the engine it is attached to, so that a
            validation set is corrupted identically at every evaluation (attach it as a handler).
    """

    def __init__(
        self,
        image_key: str = CommonKeys.IMAGE,
        max_ratio: float = GMML_MAX_RATIO,
        max_block_frac: float = GMML_MAX_BLOCK_FRAC,
        align: int = 1,
        corruptions: Sequence[str] = GMML_CORRUPTIONS,
        seed: int = 0,
        reset_each_epoch: bool = False,
    ) -> None:
        self.image_key = image_key
        self.mask_args = {
            "max_ratio": max_ratio,
            "max_block_frac": max_block_frac,
            "align": align,
            "corruptions": tuple(corruptions),
        }
        self.seed = seed
        self.reset_each_epoch = reset_each_epoch
        self._generator: torch.Generator | None = None
        self._pending_state: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget the generator; the next batch starts again from ``seed``."""
        self._generator = None
        self._pending_state = None

    def state_dict(self) -> dict:
        """The mask generator's state (for checkpoints: a resumed run draws the masks it would have drawn)."""
        return {"generator": None if self._generator is None else self._generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self._generator = None
        self._pending_state = state.get("generator")  # applied once the batch's device is known

    def attach(self, engine: Engine) -> None:
        """Reseed at each epoch start when ``reset_each_epoch`` (so it can sit in a handler list)."""
        if self.reset_each_epoch:
            engine.add_event_handler(Events.EPOCH_STARTED, lambda _: self.reset())

    def __call__(
        self,
        batchdata: dict[str, torch.Tensor],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple, dict]:
        images = batchdata[self.image_key]
        images = images.as_tensor() if hasattr(images, "as_tensor") else images
        images = images.to(device=device, non_blocking=non_blocking, dtype=torch.float32)
        if self._generator is None or self._generator.device != images.device:
            self._generator = torch.Generator(device=images.device).manual_seed(self.seed)
            if self._pending_state is not None:
                try:
                    self._generator.set_state(self._pending_state)
                except RuntimeError:  # saved on another kind of device: its stream cannot continue here
                    warnings.warn("mask generator state saved on another device; masks restart from the seed")
                self._pending_state = None
        corrupted, mask = group_mask_batch(images, generator=self._generator, **self.mask_args)
        return corrupted, torch.cat([images, mask], dim=1), (), {}


class MaskedL1Loss(nn.Module):
    """L1 reconstruction loss on the corrupted pixels, as GMML (optionally plus the clean pixels, weighted).

    Args:
        unmasked_weight: weight of the mean L1 on uncorrupted pixels (0: GMML's masked-only loss).

    Forward: ``pred`` (B, C, H, W) and ``target`` (B, C+1, H, W) from :class:`GMMLPrepareBatch`
    -> scalar loss. A batch with no corrupted pixel contributes 0 from the masked term.
    """

    def __init__(self, unmasked_weight: float = 0.0) -> None:
        super().__init__()
        if unmasked_weight < 0:
            raise ValueError(f"unmasked_weight must be >= 0, got {unmasked_weight}.")
        self.unmasked_weight = unmasked_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        clean, mask = split_target(target)
        if pred.shape != clean.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and target image {tuple(clean.shape)} differ in shape.")
        error = (pred.float() - clean.float()).abs()
        channels = clean.shape[1]
        loss = (error * mask).sum() / (mask.sum() * channels).clamp_min(1.0)
        if self.unmasked_weight > 0:
            keep = 1.0 - mask
            loss = loss + self.unmasked_weight * (error * keep).sum() / (keep.sum() * channels).clamp_min(1.0)
        return loss
