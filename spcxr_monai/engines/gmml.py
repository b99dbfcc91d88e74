"""What MONAI's engines need for GMML: the batch preparation that group-masks (in the step or the loader), the loss."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.data import list_data_collate
from monai.engines.utils import PrepareBatch
from monai.utils import CommonKeys
from torch import nn

from spcxr_monai.transforms.group_mask import GMML_CORRUPTIONS, GMML_MAX_BLOCK_FRAC, GMML_MAX_RATIO, group_mask_batch
from spcxr_monai.utils.generators import DeviceGenerator

__all__ = ["GMMLPrepareBatch", "MaskedL1Loss", "split_target"]

# Batch keys of the loader-drawn corruption (see ``GMMLPrepareBatch.collate``).
CORRUPTED_KEY = "gmml_corrupted"
MASK_KEY = "gmml_mask"


def split_target(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Undo :class:`GMMLPrepareBatch`'s packing: (B, C+1, H, W) -> clean (B, C, H, W), mask (B, 1, H, W)."""
    return target[:, :-1], target[:, -1:]


class GMMLPrepareBatch(PrepareBatch):
    """``prepare_batch`` for MONAI trainers/evaluators: corrupt the batch with GMML group masks on the device.

    Returns ``(corrupted, target)`` where ``target`` packs the clean images and the mask along the
    channel axis, (B, C+1, H, W), so MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator`` and their
    metric handlers carry it as the ``label`` unchanged (split it with :func:`split_target`).

    With ``in_loader``, the masks are drawn by :meth:`collate`, given to the ``DataLoader`` as its
    ``collate_fn``: in its worker processes when ``num_workers > 0``, so that a GPU step only moves the
    batch (drawing them in the step left the H100 waiting on the CPU: the GMML step ran at 0.46x the
    bare ViT-S there). Each worker then draws from its own generator, seeded from ``seed`` and the
    ``DataLoader``'s per-worker seed (itself drawn from torch's global generator, which the bundles seed
    and checkpoint); with ``num_workers=0`` the one generator of this object draws them, as on the device.

    Args:
        image_key: key of the image batch.
        max_ratio, max_block_frac, align, corruptions: as :func:`spcxr_monai.transforms.group_mask_batch`.
        seed: seed of the mask generator (created on the batch's device at first use).
        reset_each_epoch: reseed at every epoch start of the engine it is attached to, so that a
            validation set is corrupted identically at every evaluation (attach it as a handler).
        in_loader: draw the masks in :meth:`collate` (the ``DataLoader``) instead of on the device;
            :meth:`collate` is MONAI's ``list_data_collate`` alone otherwise.
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
        in_loader: bool = False,
    ) -> None:
        self.image_key = image_key
        self.mask_args: dict[str, Any] = {
            "max_ratio": max_ratio,
            "max_block_frac": max_block_frac,
            "align": align,
            "corruptions": tuple(corruptions),
        }
        self.seed = seed
        self.reset_each_epoch = reset_each_epoch
        self.in_loader = in_loader
        self.generator = DeviceGenerator(seed)
        self._worker_seed: int | None = None  # the DataLoader worker whose stream ``generator`` is

    def reset(self) -> None:
        """Forget the generator; the next batch starts again from ``seed``."""
        self.generator.reset()
        self._worker_seed = None

    def state_dict(self) -> dict:
        """The mask generator's state (for checkpoints: a resumed run draws the masks it would have drawn)."""
        return self.generator.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state)

    def attach(self, engine: Engine) -> None:
        """Reseed at each epoch start when ``reset_each_epoch`` (so it can sit in a handler list)."""
        if self.reset_each_epoch:
            engine.add_event_handler(Events.EPOCH_STARTED, lambda _: self.reset())

    def collate(self, items: Sequence[Any]) -> Any:
        """``collate_fn`` for the ``DataLoader``: MONAI's ``list_data_collate``, plus, when ``in_loader``,
        the GMML corruption of the images under ``gmml_corrupted`` (B, C, H, W) and its mask under
        ``gmml_mask`` (B, 1, H, W); the images themselves stay clean (they are the target)."""
        batch = list_data_collate(items)
        if not self.in_loader:
            return batch
        worker = torch.utils.data.get_worker_info()
        if worker is not None and self._worker_seed != worker.seed:
            # A forked worker inherits this object's generator: every worker would draw the same masks.
            self.generator.set(torch.Generator().manual_seed((self.seed * 1_000_003 + worker.seed) % 2**63))
            self._worker_seed = worker.seed
        generator = self.generator.get("cpu")
        images = batch[self.image_key]
        images = images.as_tensor() if hasattr(images, "as_tensor") else images
        batch[CORRUPTED_KEY], batch[MASK_KEY] = group_mask_batch(images.float(), generator=generator, **self.mask_args)
        return batch

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
        if MASK_KEY in batchdata:  # drawn by ``collate``
            corrupted = batchdata[CORRUPTED_KEY].to(device=device, non_blocking=non_blocking, dtype=torch.float32)
            mask = batchdata[MASK_KEY].to(device=device, non_blocking=non_blocking, dtype=torch.float32)
        elif self.in_loader:
            raise ValueError(
                f"in_loader=True but the batch has no '{MASK_KEY}': give this object's `collate` to the "
                "DataLoader as its collate_fn."
            )
        else:
            corrupted, mask = group_mask_batch(images, generator=self.generator.get(images.device), **self.mask_args)
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
