"""How much of a data set a cache can hold: the pretraining bundle's ``cache_rate`` from its size and the memory."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import torch

__all__ = ["auto_cache_rate", "available_memory", "free_memory"]

logger = logging.getLogger(__name__)


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (``MemAvailable`` on Linux), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def free_memory(device: torch.device | str) -> int | None:
    """Bytes free for new tensors on ``device``: the GPU's free memory (``torch.cuda.mem_get_info``) or the
    host's available memory; None where unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return available_memory() if device.type == "cpu" else None


def auto_cache_rate(
    datalist: Mapping[str, Sequence] | Sequence,
    image_size: int,
    bytes_per_pixel: int = 4,
    memory_fraction: float = 0.5,
    memory: int | None = None,
) -> float:
    """The fraction of a datalist's images a cache of ``image_size``² images can hold in ``memory_fraction``
    of the available memory (1.0 when all fit); the rest is read from the files by the loader (its workers).

    Args:
        datalist: a datalist (its ``training`` and ``validation`` splits are counted) or a list of items.
        image_size: the cached images' side.
        bytes_per_pixel: 4 for float32 (MONAI's ``CacheDataset``), 1 for the uint8 store.
        memory_fraction: the share of the available memory the cache may take.
        memory: available bytes (default: :func:`available_memory`).

    Returns:
        ``cache_rate`` in (0, 1]; the decision is logged.
    """
    count = (
        sum(len(datalist.get(k, [])) for k in ("training", "validation"))
        if isinstance(datalist, Mapping)
        else len(datalist)
    )
    need = count * image_size * image_size * bytes_per_pixel * 1.25  # 1.25: MetaTensor and item overhead
    memory = available_memory() if memory is None else memory
    if memory is None or need <= memory * memory_fraction:
        rate = 1.0
    else:
        rate = max(0.01, round(memory * memory_fraction / need, 3))
    logger.info(
        "cache_rate %.3f: %d images of %d px at %d byte(s) per pixel need ~%.2f GB; %s available (override with "
        "--cache_rate)",
        rate,
        count,
        image_size,
        bytes_per_pixel,
        need / 1e9,
        "unknown memory" if memory is None else f"{memory / 1e9:.1f} GB",
    )
    return rate
