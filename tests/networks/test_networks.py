"""GMML ViT shapes and head, named sizes, and the encoder transfer into ViT / classifier / UNETR."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from monai.networks.nets import ViT

from spcxr_monai.networks import (
    DropPathTransformerBlock,
    GMMLViT,
    create_gmml_vit,
    create_unetr,
    create_vit_classifier,
    default_reconstruction_blocks,
    load_encoder_weights,
    resize_position_embeddings,
    set_fused_attention,
)


@pytest.fixture(scope="module")
def gmml() -> GMMLViT:
    torch.manual_seed(0)
    return create_gmml_vit("tiny", img_size=64)


def test_reconstruction_shape_and_head_layout(gmml):
    x = torch.randn(2, 1, 64, 64)
    assert gmml(x).shape == (2, 1, 64, 64)
    assert gmml.reconstruction_blocks == (6, 8, 10, 12)
    linears = [m for m in gmml.head.mlp if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 3
    assert gmml.head.to_pixels.kernel_size == gmml.head.to_pixels.stride == (16, 16)


@pytest.mark.parametrize("channels, grid, patch", [(1, (4, 4), 16), (3, (2, 3), (8, 4))])
def test_head_computes_its_transposed_convolution_as_one_product(channels, grid, patch):
    from spcxr_monai.networks import ReconstructionHead

    torch.manual_seed(0)
    head = ReconstructionHead(32, patch, channels)
    torch.nn.init.normal_(head.to_pixels.bias)  # a zero bias would hide a misplaced one
    tokens = torch.randn(2, grid[0] * grid[1], 32)
    x = head.mlp(head.norm(tokens)).transpose(1, 2).reshape(2, 32, *grid)
    torch.testing.assert_close(head(tokens, grid), head.to_pixels(x))


def test_head_averages_the_chosen_blocks(gmml):
    x = torch.randn(1, 1, 64, 64)
    _, hidden = gmml.vit(x)
    expected = gmml.head(torch.stack([hidden[i - 1] for i in (6, 8, 10, 12)]).mean(0), gmml.grid_size)
    torch.testing.assert_close(gmml(x), expected)


def test_named_sizes_and_non_square_images():
    small = create_gmml_vit("small", img_size=(64, 32))
    assert small.vit.patch_embedding.position_embeddings.shape == (1, 8, 384)
    assert len(small.vit.blocks) == 12 and small.vit.blocks[0].attn.qkv.bias is not None
    assert small(torch.randn(1, 1, 64, 32)).shape == (1, 1, 64, 32)
    assert default_reconstruction_blocks(4) == (2, 3, 4)
    with pytest.raises(ValueError, match="unknown ViT size"):
        create_gmml_vit("huge")
    with pytest.raises(ValueError, match="divisible"):
        GMMLViT(img_size=50)


def test_encoder_moves_into_classifier_unetr_and_plain_vit(gmml):
    clf = load_encoder_weights(create_vit_classifier("tiny", img_size=64, num_classes=3), gmml.state_dict())
    unetr = load_encoder_weights(create_unetr("tiny", img_size=64), gmml)
    vit = ViT(1, (64, 64), 16, 192, 768, 12, 3, spatial_dims=2, qkv_bias=True, classification=True, num_classes=2)
    load_encoder_weights(vit, gmml)
    for target in (clf.vit, unetr.vit, vit):
        for key, value in gmml.vit.state_dict().items():
            torch.testing.assert_close(target.state_dict()[key], value, msg=key)
    x = torch.randn(2, 1, 64, 64)
    assert clf(x).shape == (2, 3)
    assert unetr(x).shape == (2, 2, 64, 64)


def test_checkpoint_file_with_network_key(gmml, tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"network": gmml.state_dict(), "optimizer": {}}, path)
    clf = load_encoder_weights(create_vit_classifier("tiny", img_size=64), str(path))
    torch.testing.assert_close(clf.vit.norm.weight, gmml.vit.norm.weight)


def test_position_embeddings_are_interpolated_for_a_new_image_size(gmml):
    clf = load_encoder_weights(create_vit_classifier("tiny", img_size=128), gmml)
    pos = clf.vit.patch_embedding.position_embeddings
    assert pos.shape == (1, 64, 192)
    expected = resize_position_embeddings(gmml.vit.patch_embedding.position_embeddings.detach(), (8, 8))
    torch.testing.assert_close(pos.detach(), expected)
    # a constant embedding stays constant under resizing
    const = torch.ones(1, 16, 4)
    torch.testing.assert_close(resize_position_embeddings(const, (8, 8)), torch.ones(1, 64, 4))


@pytest.mark.parametrize(
    "target,match",
    [
        (lambda: create_vit_classifier("tiny", img_size=64, patch_size=8), "patch size mismatch"),
        (lambda: create_vit_classifier("small", img_size=64), "hidden size mismatch"),
        (lambda: create_vit_classifier("tiny", img_size=64, in_channels=3), "input channel mismatch"),
        (lambda: create_vit_classifier("tiny", img_size=64, num_layers=6), "depth mismatch"),
        (lambda: create_vit_classifier("tiny", img_size=64, qkv_bias=False), "unexpected"),
    ],
)
def test_mismatches_give_clear_errors(gmml, target, match):
    with pytest.raises(ValueError, match=match):
        load_encoder_weights(target(), gmml)


def test_image_size_mismatch_without_interpolation_is_an_error(gmml):
    with pytest.raises(ValueError, match="image size mismatch"):
        load_encoder_weights(create_vit_classifier("tiny", img_size=128), gmml, interpolate_pos_embed=False)


def test_not_an_encoder_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="no ViT encoder"):
        load_encoder_weights(create_vit_classifier("tiny", img_size=64), {"weight": torch.zeros(1)})
    with pytest.raises(FileNotFoundError, match="not found"):
        load_encoder_weights(create_vit_classifier("tiny", img_size=64), str(tmp_path / "missing.pt"))


def test_fused_attention_is_on_by_default_and_matches_the_explicit_path():
    torch.manual_seed(0)
    net = create_vit_classifier("tiny", img_size=32, num_classes=3).eval()
    assert all(blk.attn.use_flash_attention for blk in net.vit.blocks)
    assert all(blk.attn.use_flash_attention for blk in create_unetr("tiny", img_size=32).vit.blocks)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        fused = net(x)
        set_fused_attention(net, False)
        assert not any(blk.attn.use_flash_attention for blk in net.vit.blocks)
        explicit = net(x)
    torch.testing.assert_close(fused, explicit, rtol=1e-4, atol=1e-5)


def test_drop_path_keeps_the_encoder_layout_and_is_the_plain_network_in_eval():
    torch.manual_seed(0)
    plain = create_vit_classifier("tiny", img_size=32, num_classes=3).eval()
    dropped = create_vit_classifier("tiny", img_size=32, num_classes=3, drop_path_rate=0.2)
    # same keys and shapes: pretrained encoders and saved fine-tunes load either way
    assert {k: v.shape for k, v in plain.state_dict().items()} == {k: v.shape for k, v in dropped.state_dict().items()}
    dropped.load_state_dict(plain.state_dict())
    rates = [blk.drop_path.drop_prob if hasattr(blk.drop_path, "drop_prob") else 0.0 for blk in dropped.vit.blocks]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.2) and rates == sorted(rates)  # linear, deepest most
    assert all(blk.attn.use_flash_attention for blk in dropped.vit.blocks)
    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(dropped.eval()(x), plain(x))
        dropped.train()
        assert not torch.allclose(dropped(x), plain(x))


def test_drop_path_drops_whole_residual_branches_per_sample():
    torch.manual_seed(0)
    block = DropPathTransformerBlock(16, 32, 2, qkv_bias=True, drop_path=0.5).train()
    x = torch.randn(1, 5, 16).expand(64, 5, 16)  # 64 copies of one sample
    with torch.no_grad():
        out = block(x)
    distinct = torch.unique(out.round(decimals=4), dim=0)
    # each copy keeps or drops each of its two branches: 2-4 outcomes, the "both dropped" one is the input
    assert 2 <= len(distinct) <= 4
    assert any(torch.allclose(row, x[0], atol=1e-4) for row in distinct)
    with pytest.raises(ValueError, match="drop_path must be in"):
        DropPathTransformerBlock(16, 32, 2, drop_path=1.0)


def test_unetr_with_drop_path_takes_the_plain_unetr_weights():
    torch.manual_seed(0)
    plain = create_unetr("tiny", img_size=32).eval()
    dropped = create_unetr("tiny", img_size=32, drop_path_rate=0.1).eval()
    dropped.load_state_dict(plain.state_dict())
    assert dropped.vit.blocks[-1].drop_path.drop_prob == pytest.approx(0.1)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(dropped(x), plain(x))
        assert dropped(x).shape == (2, 2, 32, 32)


def test_attention_rollout_works_on_a_fused_model_and_restores_it():
    from spcxr_monai.visualize import attention_rollout

    net = create_vit_classifier("tiny", img_size=32, num_classes=3)
    relevance = attention_rollout(net, torch.randn(1, 1, 32, 32), (2, 2))
    assert relevance.shape == (32, 32) and float(relevance.max()) == pytest.approx(1.0)
    assert all(blk.attn.use_flash_attention and not blk.attn.save_attn for blk in net.vit.blocks)


def test_gmml_checkpoint_in_fp16_restores_encoder_and_head(tmp_path):
    from spcxr_monai.networks import maybe_load_gmml_weights

    source = create_gmml_vit("tiny", img_size=64)
    torch.save({k: v.half() for k, v in source.state_dict().items()}, tmp_path / "gmml.pt")
    target = maybe_load_gmml_weights(create_gmml_vit("tiny", img_size=32), str(tmp_path / "gmml.pt"))
    for name, value in source.head.state_dict().items():
        torch.testing.assert_close(target.head.state_dict()[name], value.half().float())
    torch.testing.assert_close(
        target.vit.blocks[3].mlp.linear1.weight, source.vit.blocks[3].mlp.linear1.weight.half().float()
    )
    assert target.vit.patch_embedding.position_embeddings.shape[1] == 4  # resized 4x4 -> 2x2 grid
    untouched = create_gmml_vit("tiny", img_size=32)
    assert maybe_load_gmml_weights(untouched, "") is untouched
    with pytest.raises(ValueError, match="patch size mismatch"):
        maybe_load_gmml_weights(create_gmml_vit("tiny", img_size=64, patch_size=8), str(tmp_path / "gmml.pt"))


def test_trained_sizes_are_read_off_the_weights(tmp_path):
    from spcxr_monai.networks import create_unetr, create_vit_classifier, trained_sizes

    torch.save(create_unetr("tiny", img_size=64, feature_size=8).state_dict(), tmp_path / "unetr.pt")
    torch.save({"network": create_vit_classifier("small", img_size=96).state_dict()}, tmp_path / "clf.pt")
    assert trained_sizes(tmp_path / "unetr.pt") == {
        "model_size": "tiny",
        "image_size": 64,
        "patch_size": 16,
        "feature_size": 8,
        "feature_block": None,
    }
    assert trained_sizes(tmp_path / "clf.pt", feature_size=4) == {
        "model_size": "small",
        "image_size": 96,
        "patch_size": 16,
        "feature_size": 4,
        "feature_block": None,
    }
    probe = create_vit_classifier("tiny", img_size=32, feature_block=7)
    torch.save({"network": probe.state_dict()}, tmp_path / "probe.pt")
    assert trained_sizes(tmp_path / "probe.pt")["feature_block"] == 7  # a linear probe of block 7
    # no checkpoint yet: the given values
    assert trained_sizes(tmp_path / "absent.pt", image_size=99)["image_size"] == 99


def test_inference_config_builds_the_network_its_checkpoint_holds(tmp_path):
    """No size copied by hand: a 64 px ViT-S checkpoint makes a 64 px ViT-S network and a 64 px resize."""
    from monai.bundle import ConfigParser

    from spcxr_monai.networks import create_vit_classifier

    bundle = Path(__file__).resolve().parents[2] / "bundles" / "spcxr_cxr_classification"
    (tmp_path / "models").mkdir()
    torch.save(create_vit_classifier("small", img_size=64).state_dict(), tmp_path / "models" / "model.pt")
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser.update({"bundle_root": str(tmp_path)})
    network = parser.get_parsed_content("network_def")
    assert network.img_size == (64, 64) and network.vit.norm.normalized_shape == (384,)
    resize = [t for t in parser.get_parsed_content("preprocessing").transforms if type(t).__name__ == "Resized"]
    assert list(resize[0].resizer.spatial_size) == [64, 64]
    # a linear probe of a middle block: the same block, its standardising head, strictly loadable
    probe = create_vit_classifier("tiny", img_size=32, feature_block=8)
    torch.save(probe.state_dict(), tmp_path / "models" / "model.pt")
    network = parser.get_parsed_content("network_def", lazy=False)  # parsed again: the new file
    assert network.feature_block == 8
    network.load_state_dict(probe.state_dict())
