"""The classification bundle's short schedule (configs/short_schedule.json, for all-label fine-tunes): 10 epochs
with layer decay 0.85, and the optimiser it builds gives each block the lighter decay's lr."""

from __future__ import annotations

import pytest
from bundle_helpers import BUNDLES
from monai.bundle import ConfigParser

CONFIGS = BUNDLES / "spcxr_cxr_classification" / "configs"


def _parser(*configs: str) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / c) for c in configs])
    parser["network"] = "@network_def"  # no released weights needed to read the optimiser's lrs
    parser["image_size"] = 32
    return parser


def _lr_by_name(parser: ConfigParser) -> dict[str, float]:
    network = parser.get_parsed_content("network", instantiate=True)
    optimizer = parser.get_parsed_content("optimizer", instantiate=True)
    lr = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    return {name: lr[id(p)] for name, p in network.named_parameters() if id(p) in lr}


def test_short_schedule_trains_ten_epochs_with_the_lighter_layer_decay():
    default, short = _parser("train.json"), _parser("train.json", "short_schedule.json")
    assert (default["epochs"], default["layer_decay"]) == (30, 0.75)
    assert (short["epochs"], short["layer_decay"]) == (10, 0.85)
    assert short["warmup_epochs"] == default["warmup_epochs"]  # only the two keys change
    base = short.get_parsed_content("learning_rate")
    lrs = _lr_by_name(short)
    assert lrs["head.1.weight"] == pytest.approx(base)
    assert lrs["vit.blocks.11.mlp.linear1.weight"] == pytest.approx(base * 0.85)
    assert lrs["vit.blocks.0.attn.qkv.weight"] == pytest.approx(base * 0.85**12)
    # the lighter decay trains the bottom block ~4.5x faster than the default 0.75 does
    ratio = lrs["vit.blocks.0.attn.qkv.weight"] / _lr_by_name(default)["vit.blocks.0.attn.qkv.weight"]
    assert ratio == pytest.approx((0.85 / 0.75) ** 12)
