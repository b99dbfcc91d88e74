"""RandAffineBatch: the batched, on-device random affine of the data_on_device pretraining path."""

from __future__ import annotations

import pytest
import torch

from spcxr_monai.transforms import RandAffineBatch


def _blob(batch: int, size: int = 33, row: int = 16, col: int = 16) -> torch.Tensor:
    images = torch.zeros(batch, 1, size, size)
    images[:, :, row - 1 : row + 2, col - 1 : col + 2] = 1.0
    return images


def _centre(images: torch.Tensor) -> torch.Tensor:
    """(B, 2) intensity-weighted (row, col) centre of each image."""
    r = torch.arange(images.shape[-2], dtype=torch.float32)[:, None]
    c = torch.arange(images.shape[-1], dtype=torch.float32)[None, :]
    mass = images.sum((1, 2, 3))
    return torch.stack([(images * r).sum((1, 2, 3)) / mass, (images * c).sum((1, 2, 3)) / mass], 1)


def test_prob_zero_and_zero_ranges_leave_the_batch_unchanged():
    images = torch.randn(4, 1, 20, 24)
    assert torch.allclose(RandAffineBatch(prob=0.0, rotate_range=0.5, translate_range=5)(images), images, atol=1e-5)
    assert torch.allclose(RandAffineBatch(prob=1.0)(images), images, atol=1e-5)


def test_translation_moves_each_image_within_its_range():
    out = RandAffineBatch(prob=1.0, translate_range=(4.0, 0.0)).set_random_state(0)(_blob(200))
    shift = _centre(out) - torch.tensor([16.0, 16.0])
    assert shift[:, 1].abs().max() < 1e-3  # columns untouched
    assert shift[:, 0].abs().max() <= 4.0 + 1e-3 and shift[:, 0].abs().max() > 3.0  # the range is used
    assert shift[:, 0].min() < -1 and shift[:, 0].max() > 1  # both directions


def test_rotation_keeps_the_distance_to_the_centre_and_turns_within_its_range():
    out = RandAffineBatch(prob=1.0, rotate_range=0.3).set_random_state(1)(_blob(200, row=6))  # 10 px above the centre
    offset = _centre(out) - 16.0
    radius = offset.norm(dim=1)
    assert (radius - 10).abs().max() < 0.3
    angle = torch.atan2(offset[:, 1], -offset[:, 0])
    assert angle.abs().max() <= 0.3 + 0.02 and angle.abs().max() > 0.2


def test_scale_moves_points_radially_within_its_range():
    out = RandAffineBatch(prob=1.0, scale_range=0.2).set_random_state(2)(_blob(200, row=6))
    radius = (_centre(out) - 16.0).norm(dim=1)
    # sampling at s x the output position: the blob appears at 10 / s, s in [0.8, 1.2]
    assert radius.min() >= 10 / 1.2 - 0.3 and radius.max() <= 10 / 0.8 + 0.3
    assert radius.max() - radius.min() > 2.5


def test_about_prob_of_the_images_are_transformed_and_draws_are_reproducible():
    images = _blob(400)
    aug = RandAffineBatch(prob=0.5, translate_range=4.0).set_random_state(5)
    out = aug(images)
    moved = ((_centre(out) - 16).norm(dim=1) > 1e-3).float().mean()
    assert 0.4 < moved < 0.6
    again = RandAffineBatch(prob=0.5, translate_range=4.0).set_random_state(5)
    assert torch.equal(again(images), out)
    state = aug.state_dict()
    follow = aug(images)
    restored = RandAffineBatch(prob=0.5, translate_range=4.0)
    restored.load_state_dict(state)
    assert torch.equal(restored(images), follow)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="prob"):
        RandAffineBatch(prob=1.5)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        RandAffineBatch()(torch.zeros(1, 8, 8))
