"""The uint8 image store and the device batch loader of the pretraining bundle's ``data_on_device`` path."""

from __future__ import annotations

import pytest
import torch
from monai.transforms import Compose

from spcxr_monai.data import (
    CXRInputError,
    DeviceBatchLoader,
    UInt8ImageStore,
    make_unlabelled_datalist,
    normalize_batch,
)
from spcxr_monai.transforms import RandAffineBatch, cxr_preprocessing


@pytest.fixture(scope="module")
def items(sample) -> list[dict]:
    return make_unlabelled_datalist(sample, val_fraction=0)["training"]


@pytest.fixture(scope="module")
def store(items) -> UInt8ImageStore:
    return UInt8ImageStore(items, cxr_preprocessing(64), batch_size=16)


def test_store_holds_each_image_once_as_uint8_and_gives_back_the_float_path(items, store):
    assert store.images.dtype == torch.uint8 and store.images.shape == (len(items), 1, 64, 64)
    assert store.nbytes == len(items) * 64 * 64  # a quarter of the float32 cache
    assert store.files == [item["image"] for item in items]
    # each image spans 0..255, and z-scored it is the float pipeline's image up to 8-bit rounding
    assert (store.images.flatten(1).amin(1) == 0).all() and (store.images.flatten(1).amax(1) == 255).all()
    chain = Compose(cxr_preprocessing(64))
    for i in (0, len(items) // 2, len(items) - 1):
        expected = chain({"image": items[i]["image"]})["image"].as_tensor()
        got = normalize_batch(store.images[i : i + 1].float())[0]
        assert (got - expected).abs().max() < 0.03, i  # one grey level is ~0.015 standard deviations here


def test_store_refuses_an_empty_split():
    with pytest.raises(CXRInputError, match="empty"):
        UInt8ImageStore([], cxr_preprocessing(64))


def test_loader_serves_every_image_once_per_epoch_in_a_new_order(store):
    loader = DeviceBatchLoader(store, batch_size=8, shuffle=True, seed=0)
    assert len(loader) == -(-len(store) // 8)
    epochs = [[f for batch in loader for f in batch["image_file"]] for _ in range(2)]
    assert sorted(epochs[0]) == sorted(store.files) == sorted(epochs[1])
    assert epochs[0] != epochs[1]
    batch = next(iter(loader))
    assert batch["image"].dtype == torch.float32 and batch["image"].shape == (8, 1, 64, 64)
    mean, std = batch["image"].flatten(1).mean(1), batch["image"].flatten(1).std(1, unbiased=False)
    torch.testing.assert_close(mean, torch.zeros(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(std, torch.ones(8), atol=1e-4, rtol=0)
    dropping = DeviceBatchLoader(store, batch_size=8, drop_last=True)
    assert len(dropping) == len(store) // 8 and all(len(b["image"]) == 8 for b in dropping)


def test_loader_state_continues_the_same_epochs_after_a_restart(store):
    def make() -> DeviceBatchLoader:
        return DeviceBatchLoader(store, 8, shuffle=True, augment=RandAffineBatch(0.5, 0.09, 0.1, 3.2), seed=3)

    uninterrupted = make()
    next(iter(uninterrupted))
    state = uninterrupted.state_dict()
    expected = [b["image"] for b in uninterrupted]  # the second epoch
    resumed = make()
    resumed.load_state_dict(state)
    for got, want in zip((b["image"] for b in resumed), expected):
        assert torch.equal(got, want)
