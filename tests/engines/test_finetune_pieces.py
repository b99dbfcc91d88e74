"""Fine-tuning pieces: layer-wise lr decay, linear-probe freezing, the frozen-feature probe, atomic saves, threads."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from ignite.engine import Engine

from spcxr_monai.engines import param_groups_layer_decay, vit_layer_id
from spcxr_monai.handlers import FeatureProbeHandler, SegmentationOverlayWriter
from spcxr_monai.metrics import probe_accuracy
from spcxr_monai.networks import create_unetr, create_vit_classifier, encoder_features, maybe_load_encoder_weights
from spcxr_monai.utils import configure_threads, save_atomic


def _lr_of(groups, net):
    lr = {}
    for group in groups:
        for p in group["params"]:
            lr[id(p)] = group["lr"]
    return {name: lr.get(id(p)) for name, p in net.named_parameters()}


def test_layer_decay_scales_lr_by_depth_and_covers_every_parameter():
    net = create_vit_classifier("tiny", img_size=32, num_classes=3)
    groups = param_groups_layer_decay(net, lr=1e-3, weight_decay=0.05, layer_decay=0.5)
    lrs = _lr_of(groups, net)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert {n for n, v in lrs.items() if v is not None} == trainable  # every trainable parameter in a group
    assert sum(len(g["params"]) for g in groups) == len(trainable)
    # frozen: MONAI's cross-attention norms, never used without cross-attention (DDP refuses unused parameters)
    assert trainable == {n for n in lrs if "norm_cross_attn" not in n}
    assert lrs["head.1.weight"] == pytest.approx(1e-3)
    assert lrs["vit.norm.weight"] == pytest.approx(1e-3)
    assert lrs["vit.blocks.11.mlp.linear1.weight"] == pytest.approx(1e-3 * 0.5)
    assert lrs["vit.blocks.0.attn.qkv.weight"] == pytest.approx(1e-3 * 0.5**12)
    assert lrs["vit.patch_embedding.position_embeddings"] == pytest.approx(1e-3 * 0.5**13)
    decay_of = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    named = dict(net.named_parameters())
    assert decay_of[id(named["vit.blocks.3.attn.qkv.weight"])] == 0.05
    assert decay_of[id(named["vit.blocks.3.attn.qkv.bias"])] == 0.0
    assert decay_of[id(named["vit.patch_embedding.position_embeddings"])] == 0.0
    flat = param_groups_layer_decay(net, lr=1e-3, weight_decay=0.05, layer_decay=1.0)
    assert {g["lr"] for g in flat} == {1e-3}
    with pytest.raises(ValueError, match="layer_decay"):
        param_groups_layer_decay(net, 1e-3, 0.05, layer_decay=0.0)


def test_layer_decay_treats_unetr_decoder_as_head():
    net = create_unetr("tiny", img_size=32)
    lrs = _lr_of(param_groups_layer_decay(net, lr=1e-3, weight_decay=0.05, layer_decay=0.5), net)
    decoder = [n for n in lrs if not n.startswith("vit.")]
    assert decoder and all(lrs[n] == pytest.approx(1e-3) for n in decoder)
    assert lrs["vit.blocks.0.mlp.linear1.weight"] == pytest.approx(1e-3 * 0.5**12)
    assert vit_layer_id("vit.patch_embedding.patch_embeddings.weight", 12) == 0
    assert vit_layer_id("blocks.4.attn.qkv.weight", 12) == 5


def test_linear_probe_freezes_the_encoder_only():
    net = maybe_load_encoder_weights(create_vit_classifier("tiny", img_size=32), None, freeze=True)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == {"head.1.weight", "head.1.bias"}
    groups = param_groups_layer_decay(net, 1e-3, 0.05)
    assert sum(len(g["params"]) for g in groups) == 2


def test_probe_accuracy_separates_separable_features_and_fails_on_noise():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 5
    labels = np.repeat(np.arange(3), 30)
    feats = centres[labels] + rng.normal(size=(90, 16))
    for probe in ("knn", "logistic"):
        assert probe_accuracy(feats[::2], labels[::2], feats[1::2], labels[1::2], probe=probe)["accuracy"] == 1.0
    noise = rng.normal(size=(90, 16))
    assert probe_accuracy(noise[::2], labels[::2], noise[1::2], labels[1::2])["accuracy"] < 0.7
    with pytest.raises(ValueError, match="probe"):
        probe_accuracy(feats, labels, feats, labels, probe="svm")


def _loader(n: int, size: int = 32):
    gen = torch.Generator().manual_seed(n)
    images = torch.randn(n, 1, size, size, generator=gen)
    labels = torch.arange(n) % 2
    images[labels == 1] += 2.0  # class 1 is brighter: trivially separable
    return [{"image": images[i : i + 4], "label": labels[i : i + 4]} for i in range(0, n, 4)]


def test_encoder_features_mean_pools_the_final_tokens():
    net = create_vit_classifier("tiny", img_size=32).eval()
    feats, labels = encoder_features(net, _loader(8), amp="none")
    assert feats.shape == (8, 192) and labels.tolist() == [0, 1] * 4
    with torch.no_grad():
        tokens, _ = net.vit(_loader(8)[0]["image"])
    np.testing.assert_allclose(feats[:4], tokens.mean(1).numpy(), rtol=1e-4, atol=1e-5)


def test_encoder_features_of_middle_blocks_in_one_pass():
    net = create_vit_classifier("tiny", img_size=32).eval()
    feats, labels = encoder_features(net, _loader(8), amp="none", blocks=[3, 8])
    assert feats.shape == (8, 3, 192) and labels.tolist() == [0, 1] * 4
    with torch.no_grad():
        tokens, hidden = net.vit(_loader(8)[0]["image"])
    np.testing.assert_allclose(feats[:4, 0], hidden[2].mean(1).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(feats[:4, 1], hidden[7].mean(1).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(feats[:4, 2], tokens.mean(1).numpy(), rtol=1e-4, atol=1e-5)  # last: the final
    assert not np.allclose(feats[:, 0], feats[:, 1], atol=1e-3)
    with pytest.raises(ValueError, match="1..12"):
        encoder_features(net, _loader(4), amp="none", blocks=[0])


def test_classifier_on_a_middle_block_runs_and_trains_only_up_to_it():
    torch.manual_seed(0)
    net = create_vit_classifier("tiny", img_size=32, num_classes=3, feature_block=8)
    images = _loader(8)[0]["image"]
    net.eval()
    with torch.no_grad():
        _, hidden = net.vit(images)
        expected = net.head(hidden[7].mean(1))  # block 8's pooled tokens, standardised, then the head
    torch.testing.assert_close(net(images), expected)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert "vit.blocks.7.mlp.linear2.weight" in trainable and "head.2.weight" in trainable
    assert not any(n.startswith(("vit.blocks.8.", "vit.blocks.11.", "vit.norm.")) for n in trainable)
    net.train()
    net(images).sum().backward()
    assert all(p.grad is not None for n, p in net.named_parameters() if p.requires_grad and "cross_attn" not in n)
    lrs = _lr_of(param_groups_layer_decay(net, lr=1e-3, weight_decay=0.05, layer_decay=0.5), net)
    assert lrs["vit.blocks.7.attn.qkv.weight"] == pytest.approx(1e-3 * 0.5)  # block 8 is the top that trains
    assert lrs["vit.patch_embedding.position_embeddings"] == pytest.approx(1e-3 * 0.5**9)
    assert lrs["vit.blocks.8.attn.qkv.weight"] is None  # not run, not optimised
    probe = maybe_load_encoder_weights(create_vit_classifier("tiny", img_size=32, feature_block=8), None, freeze=True)
    assert {n for n, p in probe.named_parameters() if p.requires_grad} == {"head.2.weight", "head.2.bias"}
    with pytest.raises(ValueError, match="feature_block"):
        create_vit_classifier("tiny", img_size=32, feature_block=13)


def test_feature_probe_handler_logs_curve_and_saves_best(tmp_path):
    torch.manual_seed(0)  # a random encoder: its features separate brightness, how well depends on the draw
    net = create_vit_classifier("tiny", img_size=32)
    handler = FeatureProbeHandler(net, _loader(16), _loader(12), amp="none", k=3, interval=2, save_dir=str(tmp_path))
    engine = Engine(lambda e, b: None)
    handler.attach(engine)
    engine.run([0], max_epochs=3)  # probes at epoch 2 and at the last epoch (3)
    summary = json.loads((tmp_path / "feature_probe.json").read_text())
    assert [h["epoch"] for h in summary["history"]] == [2, 3]
    assert summary["history"][0]["probe_accuracy"] >= 0.9  # brightness separates the classes
    assert engine.state.metrics["probe_accuracy"] == summary["history"][-1]["probe_accuracy"]
    saved = torch.load(tmp_path / "model_probe.pt", weights_only=True)
    assert set(saved) == set(net.state_dict())
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp_")]


def test_feature_probe_handler_reads_the_block_it_is_given(tmp_path, monkeypatch):
    import spcxr_monai.handlers.feature_probe as feature_probe

    net = create_vit_classifier("tiny", img_size=32)
    seen = []

    def fake_probe(train_x, train_y, val_x, val_y, probe, k):
        seen.append(train_x)
        return {"accuracy": 0.5, "balanced_accuracy": 0.5}

    monkeypatch.setattr(feature_probe, "probe_accuracy", fake_probe)
    handler = FeatureProbeHandler(net, _loader(8), _loader(8), amp="none", block=4, save_dir=str(tmp_path))
    engine = Engine(lambda e, b: None)
    handler.attach(engine)
    engine.run([0], max_epochs=1)
    expected, _ = encoder_features(net, _loader(8), amp="none", blocks=[4])
    np.testing.assert_allclose(seen[0], expected[:, 0], rtol=1e-5, atol=1e-6)  # block 4's tokens, not the final
    assert json.loads((tmp_path / "feature_probe.json").read_text())["block"] == 4


def test_save_atomic_keeps_the_old_file_when_a_save_fails(tmp_path):
    path = tmp_path / "model.pt"
    save_atomic({"w": torch.ones(2)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(2))

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        save_atomic({"w": Unpicklable()}, path)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(2))
    assert os.listdir(tmp_path) == ["model.pt"]


def test_configure_threads_follows_argument_then_environment(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert configure_threads() == 1
        with pytest.raises(ValueError):
            configure_threads(0)
    finally:
        torch.set_num_threads(before)


def test_segmentation_overlay_draws_truth_green_and_prediction_red_over_grey():

    image = torch.linspace(-1, 1, 64 * 64).reshape(1, 64, 64)
    label = torch.zeros(1, 64, 64)
    label[0, 10:30, 10:30] = 1
    pred = torch.zeros(2, 64, 64)  # one-hot
    pred[1, 20:40, 20:40] = 1
    pred[0] = 1 - pred[1]
    rgb = SegmentationOverlayWriter.overlay(image, label, pred)
    assert rgb.shape == (64, 64, 3) and rgb.dtype.name == "uint8"
    assert tuple(rgb[10, 15]) == (0, 255, 0)  # on the truth's outline only
    red, green, blue = (int(c) for c in rgb[20, 30])  # on the prediction's outline
    assert red > 250 and green < 5 and blue < 5
    assert rgb[50, 50, 0] == rgb[50, 50, 1] == rgb[50, 50, 2]  # off the outlines: the image in grey
    assert rgb[0, 0, 0] < rgb[63, 63, 0]  # dark to bright, as the image
