"""One rank's part of a data split: disjoint shards whose union is the split, sizes within one item.

MONAI's ``partition_dataset`` (strided, not shuffled, not padded) decides who holds what, so a rank's shard
depends only on the split, the rank and the number of ranks: a resumed run holds what it held.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from monai.data import partition_dataset

__all__ = ["shard_items", "smallest_shard"]

T = TypeVar("T")


def shard_items(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """Items ``rank``, ``rank + world_size``, ... of ``items`` (all of them for one rank).

    Raises:
        ValueError: ``rank`` is not in ``[0, world_size)``.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}.")
    if world_size == 1:
        return list(items)
    return list(partition_dataset(list(items), num_partitions=world_size, shuffle=False, even_divisible=False)[rank])


def smallest_shard(total: int, world_size: int) -> int:
    """Items in the smallest of ``world_size`` shards of ``total`` items (the others hold it or one more)."""
    return total // world_size
