"""The released GMML encoder: present, checksummed, loadable into every downstream network, never overwritten."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import torch

import spcxr_monai.pretrained as pretrained
from spcxr_monai.networks import (
    create_gmml_vit,
    create_unetr,
    create_vit_classifier,
    load_encoder_weights,
    maybe_load_gmml_weights,
)


def test_only_the_default_release_ships_and_the_others_say_how_to_restore_them():
    in_tree = sorted(n for n, e in pretrained.RELEASED.items() if (pretrained.HERE / e["file"]).is_file())
    assert in_tree == [pretrained.DEFAULT]
    for name in set(pretrained.RELEASED) - {pretrained.DEFAULT}:
        record = pretrained.release_record(name)  # records and cards stay
        assert record["name"] == name
        assert (pretrained.HERE / pretrained.RELEASED[name].get("card", "MODEL_CARD.md")).is_file()
        with pytest.raises(FileNotFoundError, match=r"git show [0-9a-f]{40}:spcxr_monai/pretrained/"):
            pretrained.released_encoder(name)


@pytest.mark.parametrize("name", [pretrained.DEFAULT])
def test_released_file_matches_its_record_and_size_limit(name):
    path = pretrained.released_encoder(name)
    record = pretrained.release_record(name)
    assert (
        record["name"] == name and (pretrained.HERE / pretrained.RELEASED[name].get("card", "MODEL_CARD.md")).is_file()
    )
    data = open(path, "rb").read()
    assert hashlib.sha256(data).hexdigest() == record["sha256"]
    assert len(data) == record["bytes"] <= 25 * 2**20
    state = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    assert any(k.startswith("head.") for k in state) and any(k.startswith("vit.blocks.11.") for k in state)
    assert record["chosen_epoch"] in dict(record["val_masked_l1"]) and record["chosen_by"]


def test_released_encoder_loads_into_classifier_unetr_and_gmml():
    clf = load_encoder_weights(create_vit_classifier("tiny", img_size=128, num_classes=3), "released")
    state = torch.load(pretrained.released_encoder(), weights_only=True)
    torch.testing.assert_close(clf.vit.blocks[5].attn.qkv.weight, state["vit.blocks.5.attn.qkv.weight"].float())
    load_encoder_weights(create_unetr("tiny", img_size=128), "released")
    gmml = maybe_load_gmml_weights(create_gmml_vit("tiny", img_size=128), "released")
    torch.testing.assert_close(gmml.head.to_pixels.weight, state["head.to_pixels.weight"].float())
    with torch.no_grad():  # the head reconstructs: output tracks a smooth input, not noise
        x = torch.linspace(-1, 1, 128).reshape(1, 1, 1, 128).expand(1, 1, 128, 128).contiguous()
        y = gmml.eval()(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_resolving_checkpoints():
    assert pretrained.resolve_checkpoint("") == "" and pretrained.resolve_checkpoint(None) == ""
    assert pretrained.resolve_checkpoint("runs/x/model.pt") == "runs/x/model.pt"
    assert pretrained.resolve_checkpoint("released") == pretrained.released_encoder()
    with pytest.raises(KeyError, match="unknown released encoder"):
        pretrained.released_encoder("gmml-vit-huge")


def test_a_damaged_release_is_refused(tmp_path, monkeypatch):
    name = pretrained.RELEASED[pretrained.DEFAULT]["file"]
    stem = name.rsplit(".", 1)[0]
    shutil.copy(pretrained.HERE / f"{stem}.json", tmp_path / f"{stem}.json")
    data = bytearray((pretrained.HERE / name).read_bytes())
    data[-100] ^= 0xFF
    (tmp_path / name).write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "HERE", tmp_path)
    with pytest.raises(ValueError, match="damaged or replaced"):
        pretrained.released_encoder()
    (tmp_path / name).unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        pretrained.released_encoder()
