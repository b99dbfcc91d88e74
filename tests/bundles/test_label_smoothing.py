"""The classification bundle's label smoothing (configs/label_smoothing.json, the anchors' recipe): off by default,
0.1 with the config, and the loss it builds is cross-entropy against the smoothed targets."""

from __future__ import annotations

import pytest
import torch
from bundle_helpers import BUNDLES
from monai.bundle import ConfigParser

CONFIGS = BUNDLES / "spcxr_cxr_classification" / "configs"


def _loss(*configs: str) -> torch.nn.CrossEntropyLoss:
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / c) for c in configs])
    parser["loss#weight"] = None  # the class weights need a dataset; they are tested with training
    return parser.get_parsed_content("loss", instantiate=True)


def test_label_smoothing_is_off_by_default_and_the_config_smooths_the_targets():
    assert _loss("train.json").label_smoothing == 0.0
    loss = _loss("train.json", "label_smoothing.json")
    assert loss.label_smoothing == pytest.approx(0.1)
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    labels = torch.tensor([0, 1])
    log_p = torch.log_softmax(logits, dim=1)
    smoothed = torch.full((2, 3), 0.1 / 3) + 0.9 * torch.nn.functional.one_hot(labels, 3)
    expected = -(smoothed * log_p).sum(dim=1).mean()
    assert loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-6)
    # smoothing penalises a confident right answer: higher loss than plain cross-entropy there
    assert loss(logits[:1], labels[:1]) > _loss("train.json")(logits[:1], labels[:1])
