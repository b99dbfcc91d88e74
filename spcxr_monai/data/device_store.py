"""Images decoded once into one uint8 tensor on the training device, and a loader that serves batches from it.

The pretraining bundle's default path keeps float32 copies in a ``CacheDataset`` (64 KB per 128-px
image) and augments, collates and copies each batch on the host. With ``data_on_device`` it decodes
every image once (:class:`UInt8ImageStore`: 16 KB per 128-px image, on the GPU when there is one) and
:class:`DeviceBatchLoader` builds each batch there: an index slice, uint8 -> float, per-image
normalisation and one batched resampling (:class:`~spcxr_monai.transforms.RandAffineBatch`). The host
does the same small amount of work per step whatever the batch size (MONAI's fast-training pattern,
``CacheDataset`` + ``ToDeviced`` + ``ThreadDataLoader``, taken one step further: augmentation per batch).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from monai.data import DataLoader, Dataset
from monai.transforms import Compose

from spcxr_monai.data.errors import CXRInputError
from spcxr_monai.data.memory import free_memory
from spcxr_monai.data.shards import shard_items, smallest_shard
from spcxr_monai.distributed import rank_and_world_size
from spcxr_monai.errors import ConfigurationError

__all__ = ["DeviceBatchLoader", "UInt8ImageStore", "normalize_batch"]

logger = logging.getLogger(__name__)


def _to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) float -> uint8 spanning each image's own range (0 = its minimum, 255 = its maximum).

    The models see each image z-scored, which a per-image affine map does not change: only the 8-bit
    rounding is lost, as in the 8-bit PNG / JPEG files most CXR sets ship."""
    flat = images.flatten(1)
    low = flat.amin(1).view(-1, 1, 1, 1)
    span = (flat.amax(1).view(-1, 1, 1, 1) - low).clamp_min(1e-12)
    return ((images - low) / span * 255).round_().to(torch.uint8)


def normalize_batch(images: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Zero mean, unit variance per image: MONAI's ``NormalizeIntensity`` (as ``cxr_preprocessing`` ends)
    on each image of a (B, C, H, W) batch at once, statistics over each image's C x H x W values."""
    flat = images.flatten(1)
    mean = flat.mean(1).view(-1, 1, 1, 1)
    std = flat.std(1, unbiased=False).view(-1, 1, 1, 1)
    return (images - mean) / std.clamp_min(eps)


class UInt8ImageStore:
    """Every image of ``data`` loaded once by ``transform`` and kept as uint8 in one (N, C, H, W) tensor;
    under ``torchrun`` / ``srun`` only this rank's shard of ``data``.

    In a distributed run each rank decodes and holds the shard :func:`~spcxr_monai.data.shards.shard_items`
    gives it (disjoint, together the whole split, sizes within one image), so a rank's memory and start-up
    decode time are the split's divided by the number of ranks. Before the shard is decoded (after its first
    chunk gives the image size) its bytes are checked against ``memory_fraction`` of the free memory of
    ``device``; where they do not fit, the store is kept on ``fallback_device`` (logged in one line) or,
    without one, the run stops with a :class:`~spcxr_monai.errors.ConfigurationError` naming the sizes.

    Args:
        data: MONAI data items (dicts with ``image_key``), e.g. a datalist split (named as MONAI
            datasets name it, so a config's ``train#dataset#data`` reads it either way).
        transform: the load chain (e.g. :func:`~spcxr_monai.transforms.cxr_preprocessing`), giving the
            image as (C, H, W) of the same size for every item.
        device: where the tensor lives (the training device).
        image_key: key of the image in the items and the transformed dicts.
        num_workers: ``DataLoader`` worker processes that decode in parallel (0: this process).
        batch_size: images decoded and converted per chunk.
        progress: log progress every tenth of the items.
        shard: hold only this rank's shard when the process group is initialised (False: every item).
        fallback_device: where the store goes when it does not fit ``device`` (None: stop instead).
        memory_fraction: the share of a device's free memory the store may take.
        check_memory: compare the store's bytes with the free memory (False: place it on ``device``).

    Attributes:
        data: this rank's items.
        images: uint8 (N, C, H, W) on :attr:`device`.
        files: the N image paths, in order.
        rank, world_size: this rank and the number of ranks the split is sharded over (0, 1 unsharded).
        total: items in the whole split (all ranks).
        nbytes: size of ``images`` in bytes.

    Raises:
        CXRInputError: ``data`` is empty.
        ConfigurationError: a rank would hold no image, or the shard fits neither device.
    """

    shards_itself = True  # a DistributedSampler over it is neither needed nor allowed

    def __init__(
        self,
        data: Sequence[dict],
        transform: Callable | Sequence[Callable],
        device: torch.device | str = "cpu",
        image_key: str = "image",
        num_workers: int = 0,
        batch_size: int = 64,
        progress: bool = False,
        shard: bool = True,
        fallback_device: torch.device | str | None = "cpu",
        memory_fraction: float = 0.9,
        check_memory: bool = True,
    ) -> None:
        items = list(data)
        if not items:
            raise CXRInputError("(datalist)", "no images to store: the data split is empty")
        self.rank, self.world_size = rank_and_world_size() if shard else (0, 1)
        self.total = len(items)
        if self.total < self.world_size:
            raise ConfigurationError(
                f"{self.world_size} ranks share {self.total} images: rank {self.total} onwards would hold none; "
                "use fewer processes or more images"
            )
        self.data = shard_items(items, self.rank, self.world_size)
        self.image_key = image_key
        self.files = [str(item[image_key]) for item in self.data]
        transform = Compose(transform) if isinstance(transform, (list, tuple)) else transform
        loader = DataLoader(Dataset(self.data, transform), batch_size=batch_size, num_workers=num_workers)
        placement = (fallback_device, memory_fraction, check_memory)
        self.images = self._decode(loader, torch.device(device), placement, progress)
        if self.world_size > 1:
            logger.info(
                "rank %d of %d holds %d of %d images (%.1f MB on %s)",
                self.rank,
                self.world_size,
                len(self),
                self.total,
                self.nbytes / 1e6,
                self.device,
            )

    def _decode(self, loader: DataLoader, device: torch.device, placement: tuple, progress: bool) -> torch.Tensor:
        """Decode chunk by chunk into one preallocated tensor, placed once the first chunk gives the size."""
        images: torch.Tensor | None = None
        done, step = 0, max(1, len(self.data) // 10)
        for batch in loader:
            chunk = batch[self.image_key]
            chunk = _to_uint8((chunk.as_tensor() if hasattr(chunk, "as_tensor") else chunk).float())
            if images is None:
                shape = (len(self.data), *chunk.shape[1:])
                images = torch.empty(shape, dtype=torch.uint8, device=self._place(shape, device, *placement))
            images[done : done + len(chunk)] = chunk.to(images.device)
            done += len(chunk)
            if progress and (done // step) != ((done - len(chunk)) // step):
                logger.info("decoded %d / %d images into the uint8 store", done, len(self.data))
        assert images is not None  # the shard is never empty
        return images

    def _place(
        self,
        shape: tuple[int, ...],
        device: torch.device,
        fallback: torch.device | str | None,
        fraction: float,
        check: bool,
    ) -> torch.device:
        """``device`` where the store's bytes fit ``fraction`` of its free memory, else ``fallback``."""
        need = math.prod(shape)
        free = free_memory(device) if check else None
        if free is None or need <= fraction * free:
            return device
        rank = f"rank {self.rank} of {self.world_size}: " if self.world_size > 1 else ""
        size = f"{shape[0]} images of {'x'.join(map(str, shape[1:]))} need {need / 1e9:.2f} GB as uint8"
        if fallback is not None and torch.device(fallback) != device:
            spare = free_memory(fallback)
            if spare is None or need <= fraction * spare:
                logger.warning(
                    "%sthe store's %s, %.2f GB free on %s: kept on %s instead, each batch built there and copied "
                    "(store_fallback_device: null stops instead)",
                    rank,
                    size,
                    free / 1e9,
                    device,
                    fallback,
                )
                return torch.device(fallback)
        raise ConfigurationError(
            f"{rank}data_on_device: the store's {size}, {free / 1e9:.2f} GB free on {device}"
            f"{'' if fallback is None else f' and too little on {fallback}'}: use more ranks, a smaller image_size, "
            "or the host path (configs/train.json without data_on_device.json: auto_cache_rate, streaming)"
        )

    @classmethod
    def from_tensor(cls, images: torch.Tensor, files: Sequence[str] | None = None) -> UInt8ImageStore:
        """A store of images already decoded: uint8 (N, C, H, W), kept on their device (benchmarks, tests)."""
        if images.dtype != torch.uint8 or images.ndim != 4 or not len(images):
            raise ValueError(
                f"images must be a non-empty uint8 (N, C, H, W) tensor, got {images.dtype} {tuple(images.shape)}."
            )
        store = cls.__new__(cls)
        store.files = list(files) if files is not None else [f"image_{i}" for i in range(len(images))]
        store.data = [{"image": f} for f in store.files]
        store.image_key, store.images = "image", images
        store.rank, store.world_size, store.total = 0, 1, len(images)
        return store

    def __len__(self) -> int:
        return len(self.files)

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def nbytes(self) -> int:
        return self.images.numel() * self.images.element_size()

    @property
    def smallest_shard(self) -> int:
        """Images of the smallest rank's shard: the steps every rank can take in an epoch."""
        return smallest_shard(self.total, self.world_size)


class _BatchFiles(Sequence):
    """The file names of one batch, looked up only when read (e.g. by the NaN-loss error message): a step
    builds no list of its B names."""

    def __init__(self, files: Sequence[str], index: torch.Tensor) -> None:
        self._files, self._index = files, index

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i):
        picked = self._index.tolist()
        return [self._files[j] for j in picked[i]] if isinstance(i, slice) else self._files[picked[i]]


class DeviceBatchLoader:
    """Batches from a :class:`UInt8ImageStore`, built on its device: ``{"image": (B, C, H, W) float32,
    "image_file": the batch's paths}``.

    Per batch: an index slice of the epoch's order, uint8 -> float, the per-image z-score of
    :func:`normalize_batch` (what ``cxr_preprocessing`` ends with), then
    ``augment`` (e.g. :class:`~spcxr_monai.transforms.RandAffineBatch`) on the whole batch. A drop-in for
    the ``DataLoader`` of MONAI's trainers and evaluators (``len``, iteration, dict batches).

    Over a sharded store (one per rank under ``torchrun``) it is also the ``DistributedSampler``: each rank
    draws its own order and augmentation (seeded ``seed + rank``) over its own shard, and with ``even_steps``
    every rank takes the smallest shard's number of steps (a larger shard's one extra image sits out that
    epoch, another one each epoch): DDP's collective steps never wait on a rank that has finished.

    Args:
        store: the images.
        batch_size: images per batch.
        shuffle: a new order every epoch (drawn on the host from a seeded generator, one copy per epoch).
        drop_last: leave out the last, smaller batch.
        augment: callable on a (B, C, H, W) float batch, or None.
        seed: seed of the order and of ``augment`` (through its ``set_random_state``); rank r uses ``seed + r``.
        image_key: key of the images in the batches.
        file_key: key of the batch's file names (None: left out).
        even_steps: the same number of steps on every rank (default: ``shuffle``, i.e. training); without it
            each rank covers its whole shard once (evaluation, gathered by the metrics as the host path's).
        sampler: accepted only as None: the store is sharded already (a sampler from a config that merged
            ``multi_gpu_train.json`` resolves to None for it).

    Raises:
        ConfigurationError: a sampler was given.
    """

    def __init__(
        self,
        store: UInt8ImageStore,
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        seed: int = 0,
        image_key: str = "image",
        file_key: str | None = "image_file",
        even_steps: bool | None = None,
        sampler: Any = None,
    ) -> None:
        if sampler is not None:
            raise ConfigurationError(
                f"DeviceBatchLoader takes no sampler (got {type(sampler).__name__}): its UInt8ImageStore holds this "
                "rank's shard already; remove the sampler from the config (train#dataloader#sampler / "
                "validate#dataloader#sampler)"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.store = store
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.even_steps = shuffle if even_steps is None else even_steps
        self.drop_last = drop_last and self._images_per_epoch > batch_size
        self.augment = augment
        self.image_key = image_key
        self.file_key = file_key
        seed = seed + store.rank
        self._order = torch.Generator().manual_seed(seed)
        if augment is not None and hasattr(augment, "set_random_state"):
            augment.set_random_state(seed)
        if store.world_size > 1 and self.even_steps:  # the count DDP's collective steps depend on
            logger.info(
                "rank %d of %d: %d steps of %d per epoch over %d of its %d images",
                store.rank,
                store.world_size,
                len(self),
                batch_size,
                min(len(self) * batch_size, self._images_per_epoch),
                len(store),
            )

    @property
    def _images_per_epoch(self) -> int:
        return self.store.smallest_shard if self.even_steps else len(self.store)

    def __len__(self) -> int:
        n = self._images_per_epoch
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def state_dict(self) -> dict:
        """The order's and the augmentation's generators (a resumed run draws the epochs it would have)."""
        aug: dict = getattr(self.augment, "state_dict", dict)()  # a stateful augmentation (RandAffineBatch) or none
        return {"order": self._order.get_state(), "augment": aug}

    def load_state_dict(self, state: dict) -> None:
        self._order.set_state(state["order"])
        if hasattr(self.augment, "load_state_dict"):
            self.augment.load_state_dict(state["augment"])  # type: ignore[union-attr]  # hasattr: not None

    def __iter__(self) -> Iterator[dict]:
        n, device = len(self.store), self.store.images.device
        order = torch.randperm(n, generator=self._order) if self.shuffle else torch.arange(n)
        order = order[: self._images_per_epoch]
        order_on_device = order.to(device, non_blocking=True)
        for i in range(len(self)):
            index = order_on_device[i * self.batch_size : (i + 1) * self.batch_size]
            images = normalize_batch(self.store.images[index].float())
            if self.augment is not None:
                images = self.augment(images)
            batch: dict[str, Any] = {self.image_key: images}
            if self.file_key:
                batch[self.file_key] = _BatchFiles(
                    self.store.files, order[i * self.batch_size : (i + 1) * self.batch_size]
                )
            yield batch
