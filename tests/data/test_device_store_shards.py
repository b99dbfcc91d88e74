"""The device-fed path under torchrun, one rank at a time: each rank's store holds its shard only, every rank
takes the same number of steps, a sampler is refused in one line, and a store that does not fit its device
moves to the fallback or stops naming the sizes. (The real 2-process runs: tests/bundles/test_distributed.py.)"""

from __future__ import annotations

import logging

import pytest
import torch

import spcxr_monai.data.device_store as device_store
from spcxr_monai.data import DeviceBatchLoader, UInt8ImageStore, make_unlabelled_datalist
from spcxr_monai.data.shards import shard_items, smallest_shard
from spcxr_monai.distributed import check_single_process_launch, distributed_sampler
from spcxr_monai.errors import ConfigurationError
from spcxr_monai.transforms import cxr_preprocessing


@pytest.fixture(scope="module")
def items(sample) -> list[dict]:
    return make_unlabelled_datalist(sample, val_fraction=0)["training"]


def _store_of_rank(monkeypatch, items, rank: int, world: int, **kwargs) -> UInt8ImageStore:
    monkeypatch.setattr(device_store, "rank_and_world_size", lambda: (rank, world))
    return UInt8ImageStore(items, cxr_preprocessing(32), batch_size=8, **kwargs)


@pytest.mark.parametrize("total, world", [(54, 2), (11, 2), (10, 3), (7, 7), (1000, 64)])
def test_shards_are_disjoint_complete_and_within_one_item(total, world):
    shards = [shard_items(list(range(total)), rank, world) for rank in range(world)]
    assert sorted(i for shard in shards for i in shard) == list(range(total))  # complete, nothing twice
    sizes = [len(shard) for shard in shards]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) == smallest_shard(total, world)
    assert shard_items(list(range(total)), 0, 1) == list(range(total))
    with pytest.raises(ValueError, match="rank must be in"):
        shard_items([1, 2], 2, 2)


def test_each_rank_decodes_and_holds_only_its_shard(monkeypatch, items):
    whole = _store_of_rank(monkeypatch, items, 0, 1)
    ranks = [_store_of_rank(monkeypatch, items, r, 2) for r in (0, 1)]
    assert [s.total for s in ranks] == [len(items)] * 2 and [s.world_size for s in ranks] == [2, 2]
    assert sorted(ranks[0].files + ranks[1].files) == sorted(whole.files)
    assert not set(ranks[0].files) & set(ranks[1].files)
    # bytes per rank: half the archive, within one image
    one_image = whole.nbytes // len(whole)
    for store in ranks:
        assert abs(store.nbytes - whole.nbytes / 2) <= one_image / 2 + 1e-9
    # the same pixels as the unsharded store for the same files
    index = {f: i for i, f in enumerate(whole.files)}
    for store in ranks:
        assert torch.equal(store.images, whole.images[[index[f] for f in store.files]])


def test_every_rank_takes_the_same_steps_and_its_own_order(monkeypatch, items):
    odd = items[:11]  # shards of 6 and 5
    ranks = [_store_of_rank(monkeypatch, odd, r, 2) for r in (0, 1)]
    assert [len(s) for s in ranks] == [6, 5]
    for drop_last, steps in ((True, 2), (False, 3)):
        loaders = [DeviceBatchLoader(s, batch_size=2, shuffle=True, drop_last=drop_last, seed=0) for s in ranks]
        assert [len(loader) for loader in loaders] == [steps, steps]
        seen = [[f for batch in loader for f in batch["image_file"]] for loader in loaders]
        assert [len(files) for files in seen] == [min(5, steps * 2)] * 2
        assert set(seen[0]) <= set(ranks[0].files) and set(seen[1]) <= set(ranks[1].files)
    # rank 1 draws from seed + 1: another order than rank 0 would draw over the same shard size
    a = DeviceBatchLoader(ranks[0], batch_size=2, shuffle=True, seed=0)
    b = DeviceBatchLoader(ranks[1], batch_size=2, shuffle=True, seed=0)
    assert not torch.equal(a._order.get_state(), b._order.get_state())
    # evaluation (no shuffle): each rank covers its whole shard once, as DistributedSampler(even_divisible=False)
    evaluation = [DeviceBatchLoader(s, batch_size=4) for s in ranks]
    covered = [f for loader in evaluation for batch in loader for f in batch["image_file"]]
    assert sorted(covered) == sorted(item["image"] for item in odd)


def test_a_sampler_is_refused_in_one_line_and_a_sharded_store_needs_none(items):
    store = UInt8ImageStore(items[:4], cxr_preprocessing(32))
    with pytest.raises(ConfigurationError, match="takes no sampler") as caught:
        DeviceBatchLoader(store, batch_size=2, sampler=torch.utils.data.SequentialSampler(range(4)))
    assert "\n" not in str(caught.value) and "train#dataloader#sampler" in str(caught.value)
    assert distributed_sampler(store) is None  # multi_gpu_train.json's sampler resolves to none for a store


def test_a_store_too_big_for_its_device_moves_to_the_fallback_or_stops_naming_the_sizes(monkeypatch, items, caplog):
    # the "meta" device stands for a GPU with 1 KB free; the host has plenty
    monkeypatch.setattr(device_store, "free_memory", lambda d: 1000 if torch.device(d).type == "meta" else 10**12)
    few = items[:4]
    with caplog.at_level(logging.WARNING, logger="spcxr_monai.data.device_store"):
        moved = UInt8ImageStore(few, cxr_preprocessing(32), device="meta")
    assert moved.device.type == "cpu" and moved.images.shape == (4, 1, 32, 32)
    assert "4 images of 1x32x32 need 0.00 GB" in caplog.text and "kept on cpu" in caplog.text
    with pytest.raises(ConfigurationError, match=r"4 images of 1x32x32 .* free on meta: use more ranks"):
        UInt8ImageStore(few, cxr_preprocessing(32), device="meta", fallback_device=None)
    forced = UInt8ImageStore(few, cxr_preprocessing(32), device="meta", check_memory=False)
    assert forced.device.type == "meta"  # the setting that overrides the check


def test_a_rank_without_images_and_a_one_process_config_on_many_processes_are_refused(monkeypatch, items):
    with pytest.raises(ConfigurationError, match="3 ranks share 2 images"):
        _store_of_rank(monkeypatch, items[:2], 0, 3)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigurationError, match="launched as 2 processes.*multi_gpu_train.json"):
        check_single_process_launch()
    monkeypatch.setenv("WORLD_SIZE", "1")
    check_single_process_launch()  # one process: nothing to say
