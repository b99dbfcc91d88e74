"""GMML group masking: coverage, alignment, reproducibility, corruption types, array/dict/batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spcxr_monai.transforms import RandGroupMask, RandGroupMaskd, draw_group_masks, group_mask_batch
from spcxr_monai.transforms.io import LoadCXR


@pytest.fixture(scope="module")
def cxr(real_png) -> torch.Tensor:
    """A real CXR, z-scored, as (1, H, W)."""
    x = LoadCXR()(real_png).as_tensor()
    return (x - x.mean()) / x.std()


@pytest.mark.parametrize("max_ratio,align", [(0.75, 1), (0.75, 16), (0.4, 8)])
def test_covered_fraction_within_bounds_over_many_seeds(max_ratio, align):
    g = torch.Generator().manual_seed(0)
    mask, _, _ = draw_group_masks(200, 224, 224, max_ratio=max_ratio, max_block_frac=0.3, align=align, generator=g)
    frac = mask.float().mean(dim=(1, 2))
    low = min(0.5, max_ratio)
    # the last block may overshoot the target by at most one block
    one_block = (int(0.3 * 224) // align * align) ** 2 / 224**2
    assert frac.min() >= low
    assert frac.max() <= max_ratio + one_block
    # targets are uniform in [low, max_ratio]: the mean sits a little above their middle (overshoot)
    assert (low + max_ratio) / 2 <= frac.mean() <= (low + max_ratio) / 2 + one_block / 2
    if low < max_ratio:
        assert frac.std() > 0.02  # the target really varies from image to image


def test_block_corners_and_sides_align_to_the_grid():
    g = torch.Generator().manual_seed(1)
    mask, _, _ = draw_group_masks(20, 224, 224, align=16, generator=g)
    cells = mask.reshape(20, 14, 16, 14, 16).float()
    # every 16x16 cell is either fully masked or fully clean
    assert torch.all(cells.amin(dim=(2, 4)) == cells.amax(dim=(2, 4)))
    # unaligned masks do cut cells
    mask1, _, _ = draw_group_masks(20, 224, 224, align=1, generator=torch.Generator().manual_seed(1))
    cells1 = mask1.reshape(20, 14, 16, 14, 16).float()
    assert not torch.all(cells1.amin(dim=(2, 4)) == cells1.amax(dim=(2, 4)))


def test_alignment_with_image_not_a_multiple_of_the_grid():
    mask, _, _ = draw_group_masks(8, 100, 70, align=16, generator=torch.Generator().manual_seed(2))
    assert mask.shape == (8, 100, 70)
    frac = mask.float().mean(dim=(1, 2))
    assert frac.min() >= 0.5


def test_same_seed_same_mask_and_different_seeds_differ(cxr):
    t = RandGroupMask(align=16)
    t.set_random_state(7)
    a, ma = t(cxr)
    t.set_random_state(7)
    b, mb = t(cxr)
    t.set_random_state(8)
    _, mc = t(cxr)
    assert torch.equal(ma, mb) and torch.equal(a, b)
    assert not torch.equal(ma, mc)


def test_batch_images_get_independent_masks(cxr):
    batch = cxr[None].repeat(6, 1, 1, 1)
    _, mask = group_mask_batch(batch, align=16, generator=torch.Generator().manual_seed(0))
    flat = mask.reshape(6, -1)
    assert all(not torch.equal(flat[i], flat[j]) for i in range(6) for j in range(i + 1, 6))


def _run(corruption: str, cxr: torch.Tensor, seed: int = 3):
    batch = torch.stack([cxr, torch.flip(cxr, dims=(-1,))])
    out, mask = group_mask_batch(
        batch, align=16, corruptions=[corruption], generator=torch.Generator().manual_seed(seed)
    )
    return batch, out, mask.bool().expand_as(batch)


def test_pixels_outside_the_mask_are_untouched(cxr):
    for corruption in ("noise", "zeros", "shuffle", "replace"):
        batch, out, m = _run(corruption, cxr)
        assert torch.equal(out[~m], batch[~m]), corruption
        assert m.any()


def test_noise_is_standard_normal(cxr):
    _, out, m = _run("noise", cxr)
    noise = out[m]
    assert abs(noise.mean().item()) < 0.05 and abs(noise.std().item() - 1) < 0.05


def test_zeros_fill_zeros(cxr):
    _, out, m = _run("zeros", cxr)
    assert torch.all(out[m] == 0)


def test_shuffle_takes_blocks_from_the_same_image(cxr):
    batch, out, m = _run("shuffle", cxr)
    # every corrupted value is a value of the same image, and the masked area really changed
    for i in range(2):
        values = set(batch[i].flatten().tolist())
        assert set(out[i][m[i]].tolist()) <= values
    assert not torch.equal(out[m], batch[m])


def test_replace_takes_the_same_window_from_another_image(cxr):
    batch, out, m = _run("replace", cxr)
    # two images: each image's corrupted pixels are the other's pixels at the same place
    assert torch.equal(out[0][m[0]], batch[1][m[0]])
    assert torch.equal(out[1][m[1]], batch[0][m[1]])


def test_replace_needs_a_second_image(cxr):
    with pytest.raises(ValueError, match="replace"):
        group_mask_batch(cxr[None], corruptions=["replace"])
    t = RandGroupMask(corruptions=["replace"])
    other = torch.zeros_like(cxr)
    out, mask = t(cxr, replace_source=other)
    assert torch.all(out[mask.bool()] == 0)


@pytest.mark.parametrize("as_numpy", [True, False])
def test_array_transform_keeps_type_and_shape(cxr, as_numpy):
    img = cxr.numpy() if as_numpy else cxr
    out, mask = RandGroupMask(align=16).set_random_state(0)(img)
    assert type(out) is type(img) and type(mask) is type(img)
    assert out.shape == img.shape == (1, 256, 256) and mask.shape == (1, 256, 256)
    assert 0.5 <= float(mask.mean()) <= 0.9
    np.testing.assert_array_equal(np.asarray(out)[np.asarray(mask) == 0], np.asarray(img)[np.asarray(mask) == 0])


def test_prob_zero_leaves_the_image_alone(cxr):
    out, mask = RandGroupMask(prob=0.0)(cxr)
    assert torch.equal(out, cxr) and float(mask.sum()) == 0


def test_dictionary_transform_writes_user_named_keys(real_png):
    loaded = LoadCXR()(real_png)
    t = RandGroupMaskd(keys="image", target_keys="clean", mask_keys="gmml_mask", align=16, corruptions=["zeros"])
    t.set_random_state(0)
    out = t({"image": loaded, "label": 2})
    assert set(out) == {"image", "clean", "gmml_mask", "label"}
    assert out["clean"] is loaded
    m = out["gmml_mask"].bool()
    assert torch.all(out["image"][m] == 0) and torch.equal(out["image"][~m], loaded[~m])
    assert out["image"].meta["filename_or_obj"] == str(real_png)  # MetaTensor meta kept


def test_dictionary_transform_is_reproducible_with_set_random_state(cxr):
    t = RandGroupMaskd(keys="image", align=16)
    a = t.set_random_state(3)({"image": cxr})
    b = t.set_random_state(3)({"image": cxr})
    assert torch.equal(a["image_mask"], b["image_mask"]) and torch.equal(a["image"], b["image"])


def test_bad_arguments_are_refused():
    for kwargs in ({"max_ratio": 0}, {"max_block_frac": 1.5}, {"align": 0}, {"corruptions": ["blur"]}):
        with pytest.raises(ValueError):
            RandGroupMask(**kwargs)
    with pytest.raises(ValueError, match="C, H, W"):
        RandGroupMask()(torch.zeros(8, 8))
