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
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from monai.data import DataLoader, Dataset
from monai.transforms import Compose

from spcxr_monai.data.errors import CXRInputError

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
    """Every image of ``data`` loaded once by ``transform`` and kept as uint8 in one (N, C, H, W) tensor.

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

    Attributes:
        data: the items.
        images: uint8 (N, C, H, W) on ``device``.
        files: the N image paths, in order.
        nbytes: size of ``images`` in bytes.

    Raises:
        CXRInputError: ``items`` is empty.
    """

    def __init__(
        self,
        data: Sequence[dict],
        transform: Callable | Sequence[Callable],
        device: torch.device | str = "cpu",
        image_key: str = "image",
        num_workers: int = 0,
        batch_size: int = 64,
        progress: bool = False,
    ) -> None:
        if not data:
            raise CXRInputError("(datalist)", "no images to store: the data split is empty")
        self.data = list(data)
        self.image_key = image_key
        self.files = [str(item[image_key]) for item in self.data]
        transform = Compose(transform) if isinstance(transform, (list, tuple)) else transform
        loader = DataLoader(Dataset(self.data, transform), batch_size=batch_size, num_workers=num_workers)
        chunks, done, step = [], 0, max(1, len(self.data) // 10)
        for batch in loader:
            images = batch[image_key]
            images = images.as_tensor() if hasattr(images, "as_tensor") else images
            chunks.append(_to_uint8(images.float()))
            done += len(images)
            if progress and (done // step) != ((done - len(images)) // step):
                logger.info("decoded %d / %d images into the uint8 store", done, len(self.data))
        self.images = torch.cat(chunks).to(device)

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
        return store

    def __len__(self) -> int:
        return len(self.files)

    @property
    def nbytes(self) -> int:
        return self.images.numel() * self.images.element_size()


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

    Args:
        store: the images.
        batch_size: images per batch.
        shuffle: a new order every epoch (drawn on the host from a seeded generator, one copy per epoch).
        drop_last: leave out the last, smaller batch.
        augment: callable on a (B, C, H, W) float batch, or None.
        seed: seed of the order and of ``augment`` (through its ``set_random_state``).
        image_key: key of the images in the batches.
        file_key: key of the batch's file names (None: left out).
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
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.store = store
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last and len(store) > batch_size
        self.augment = augment
        self.image_key = image_key
        self.file_key = file_key
        self._order = torch.Generator().manual_seed(seed)
        if augment is not None and hasattr(augment, "set_random_state"):
            augment.set_random_state(seed)

    def __len__(self) -> int:
        n = len(self.store)
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
