"""lung_mask_cleanup: two lungs kept, a stray blob dropped, a hole filled."""

from __future__ import annotations

import torch

from spcxr_monai.transforms import lung_mask_cleanup


def _lungs_with_noise() -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 32, 32) label maps: two lungs (the truth), and the same with a hole and a 2x2 stray blob."""
    truth = torch.zeros(1, 32, 32)
    truth[0, 4:28, 3:13] = 1  # right lung
    truth[0, 4:28, 19:29] = 1  # left lung
    noisy = truth.clone()
    noisy[0, 10:13, 6:9] = 0  # hole in the right lung
    noisy[0, 29:31, 15:17] = 1  # blob below, between them
    return truth, noisy


def test_label_map_keeps_both_lungs_fills_the_hole_and_drops_the_blob():
    truth, noisy = _lungs_with_noise()
    out = lung_mask_cleanup("pred")({"pred": noisy.clone()})["pred"]
    assert out.shape == (1, 32, 32)
    assert torch.equal(torch.as_tensor(out), truth)


def test_one_component_drops_the_smaller_lung_and_disabled_changes_nothing():
    truth, noisy = _lungs_with_noise()
    one = torch.as_tensor(lung_mask_cleanup("pred", num_components=1)({"pred": truth.clone()})["pred"])
    assert one.sum() == truth.sum() / 2  # the lungs are equal: one of them is kept
    same = lung_mask_cleanup("pred", enabled=False)({"pred": noisy.clone()})["pred"]
    assert torch.equal(torch.as_tensor(same), noisy)
