"""GMML batch preparation, masked L1 loss, handlers, autocast fallback, parameter groups."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine

from spcxr_monai.engines import (
    AutocastInferer,
    GMMLPrepareBatch,
    MaskedL1Loss,
    param_groups_weight_decay,
    split_target,
)
from spcxr_monai.handlers import latest_checkpoint
from spcxr_monai.networks import create_gmml_vit
from spcxr_monai.utils import cpu_has_fast_bf16, resolve_amp_dtype


def test_prepare_batch_packs_clean_image_and_mask():
    images = torch.randn(4, 1, 32, 32)
    corrupted, target, args, kwargs = GMMLPrepareBatch(align=8, seed=0)({"image": images}, device="cpu")
    clean, mask = split_target(target)
    assert corrupted.shape == clean.shape == (4, 1, 32, 32) and mask.shape == (4, 1, 32, 32)
    torch.testing.assert_close(clean, images)
    assert torch.equal(corrupted[mask == 0], images[mask == 0])
    assert not torch.equal(corrupted[mask == 1], images[mask == 1])
    assert args == () and kwargs == {}


def test_prepare_batch_resets_each_epoch_when_attached():
    images = torch.randn(2, 1, 32, 32)
    prep = GMMLPrepareBatch(seed=5, reset_each_epoch=True)
    masks = []
    engine = Engine(lambda e, b: masks.append(prep(b, "cpu")[1][:, -1:]))
    prep.attach(engine)
    engine.run([{"image": images}] * 2, max_epochs=2)
    assert torch.equal(masks[0], masks[2]) and torch.equal(masks[1], masks[3])  # same per epoch
    assert not torch.equal(masks[0], masks[1])


def test_masks_drawn_in_the_loader_equal_those_drawn_in_the_step():
    images = [{"image": torch.randn(1, 32, 32)} for _ in range(4)]
    in_step = GMMLPrepareBatch(align=8, seed=3)
    in_loader = GMMLPrepareBatch(align=8, seed=3, in_loader=True)
    plain = in_step.collate(images)
    assert set(plain) == {"image"}  # without in_loader: list_data_collate alone
    for _ in range(2):  # the same stream, batch after batch
        batch = in_loader.collate(images)
        assert batch["gmml_mask"].shape == (4, 1, 32, 32) and batch["gmml_corrupted"].shape == (4, 1, 32, 32)
        expected, got = in_step(plain, "cpu"), in_loader(batch, "cpu")
        torch.testing.assert_close(got[0], expected[0])
        torch.testing.assert_close(got[1], expected[1])
    with pytest.raises(ValueError, match="collate_fn"):
        in_loader(plain, "cpu")


def test_loader_workers_draw_their_own_reproducible_masks():
    from monai.data import DataLoader

    data = [{"image": torch.randn(1, 32, 32)} for _ in range(8)]

    def masks() -> list:
        torch.manual_seed(0)  # the DataLoader's per-worker seeds come from torch's global generator
        prep = GMMLPrepareBatch(align=8, seed=1, in_loader=True)
        loader = DataLoader(data, batch_size=2, num_workers=2, collate_fn=prep.collate)
        return [prep(batch, "cpu")[1][:, -1:] for batch in loader]

    first, again = masks(), masks()
    assert len(first) == 4 and all(torch.equal(a, b) for a, b in zip(first, again))
    # batches 0 and 1 come from workers 0 and 1: forked with the same generator, they must not repeat it
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[0], first[2])
    assert all(0.3 < float(m.mean()) < 0.9 for m in first)


def test_masked_l1_counts_only_corrupted_pixels():
    clean = torch.zeros(1, 1, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1
    pred = torch.zeros(1, 1, 4, 4)
    pred[..., :2, :] = 2.0  # error 2 on the masked half
    pred[..., 2:, :] = 10.0  # error 10 on the clean half: ignored by default
    target = torch.cat([clean, mask], 1)
    assert MaskedL1Loss()(pred, target).item() == pytest.approx(2.0)
    assert MaskedL1Loss(unmasked_weight=0.1)(pred, target).item() == pytest.approx(2.0 + 0.1 * 10.0)
    with pytest.raises(ValueError, match="differ in shape"):
        MaskedL1Loss()(torch.zeros(1, 2, 4, 4), target)


@pytest.mark.parametrize(
    "avx512_bf16, amx, expected", [(True, False, torch.bfloat16), (False, True, torch.bfloat16), (False, False, None)]
)
def test_auto_amp_on_cpu_follows_native_bf16_support(monkeypatch, avx512_bf16, amx, expected):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert cpu_has_fast_bf16() is (avx512_bf16 or amx)
    assert resolve_amp_dtype("auto", "cpu") == expected
    assert AutocastInferer("cpu", "auto").dtype == expected


def test_amp_resolution_falls_back_on_cpu():
    assert resolve_amp_dtype("fp16", "cpu") is None
    assert resolve_amp_dtype("bf16", "cpu") == torch.bfloat16
    assert resolve_amp_dtype("none", "cuda") is None
    with pytest.raises(ValueError):
        resolve_amp_dtype("int8", "cpu")


def test_bf16_autocast_inferer_on_cpu_matches_fp32_closely():
    torch.manual_seed(0)
    net = create_gmml_vit("tiny", img_size=32).eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        full = AutocastInferer("cpu", "none")(x, net)
        half = AutocastInferer("cpu", "bf16")(x, net)
    assert half.dtype == torch.float32 and full.dtype == torch.float32  # outputs back in fp32 for the loss
    assert not torch.equal(half, full)  # but computed in bf16
    assert torch.corrcoef(torch.stack([full.flatten(), half.flatten()]))[0, 1] > 0.99


def test_no_weight_decay_on_biases_norms_and_position_embeddings():
    net = create_gmml_vit("tiny", img_size=32)
    decay, no_decay = param_groups_weight_decay(net, 0.05)
    names = {id(p): n for n, p in net.named_parameters()}
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"])
    assert any("position_embeddings" in names[id(p)] for p in no_decay["params"])
    trainable = [p for p in net.parameters() if p.requires_grad]
    assert len(decay["params"]) + len(no_decay["params"]) == len(trainable)
    # frozen, never in a group: parameters no GMML loss reaches (the ViT's final norm, cross-attention norms)
    frozen = {n for n, p in net.named_parameters() if not p.requires_grad}
    assert frozen == {"vit.norm.weight", "vit.norm.bias"} | {n for n in names.values() if "norm_cross_attn" in n}


def test_latest_checkpoint_picks_the_highest_epoch(tmp_path):
    assert latest_checkpoint(str(tmp_path)) is None
    for n in (2, 10, 9):
        (tmp_path / f"checkpoint_checkpoint_epoch={n}.pt").write_bytes(b"")
    assert latest_checkpoint(str(tmp_path)).endswith("epoch=10.pt")
