"""lung_mask_cleanup: two lungs kept, a stray blob dropped, a hole filled; the masks and their distances at the
radiograph's own size for evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose
from PIL import Image

from spcxr_monai.errors import find_spcxr_error
from spcxr_monai.handlers import SpacedHausdorffDistance
from spcxr_monai.transforms import cxr_preprocessing, lung_mask_cleanup, native_resolution_masks


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


def _write_case(folder: Path, rows: int = 256, cols: int = 192) -> tuple[Path, Path, np.ndarray]:
    """A radiograph-like PNG and its lung mask PNG (0 / 255) of ``rows`` x ``cols``: two ellipses."""
    yy, xx = np.mgrid[:rows, :cols]
    lungs = (((yy - rows * 0.5) / (rows * 0.35)) ** 2 + ((xx - cols * 0.3) / (cols * 0.14)) ** 2 < 1) | (
        ((yy - rows * 0.5) / (rows * 0.35)) ** 2 + ((xx - cols * 0.72) / (cols * 0.13)) ** 2 < 1
    )
    image = np.where(lungs, 60, 190) + np.random.default_rng(0).integers(0, 20, (rows, cols))
    Image.fromarray(image.astype(np.uint8)).save(folder / "image.png")
    Image.fromarray((lungs * 255).astype(np.uint8)).save(folder / "mask.png")
    return folder / "image.png", folder / "mask.png", lungs


def _preprocessed(image: Path, mask: Path) -> dict:
    load = Compose(cxr_preprocessing(64, label_key="label", label_file_key="label_file", ensure_type=True))
    item = load({"image": str(image), "label": str(mask)})
    probs = torch.nn.functional.avg_pool2d(torch.cat([1 - item["label"], item["label"]])[None], 3, 1, 1)[0]
    return {**item, "pred": probs}  # smooth class probabilities of the 64 px mask, as a network gives


def test_native_resolution_masks_compare_at_the_mask_files_own_size(tmp_path):
    image, mask, lungs = _write_case(tmp_path)
    out = native_resolution_masks(clean=True)(_preprocessed(image, mask))
    assert out["pred_native"].shape == out["label_native"].shape == (2, 256, 192)
    np.testing.assert_array_equal(np.asarray(out["label_native"][1]), lungs)  # the file's mask, untouched
    pred = np.asarray(out["pred_native"][1]).astype(bool)
    dice = 2 * (pred & lungs).sum() / (pred.sum() + lungs.sum())
    assert dice > 0.97
    # smooth borders: along each row the predicted edge moves by at most a pixel or two from row to row,
    # where 64 -> 256 nearest upsampling makes 4-pixel stairs
    left_edges = np.array([np.argmax(row) for row in pred[60:200]])
    assert np.abs(np.diff(left_edges)).max() <= 2
    assert native_resolution_masks(enabled=False)({"x": 1}) == {"x": 1}


def test_native_resolution_masks_refuse_a_mask_of_another_size_naming_it(tmp_path):
    image, _, _ = _write_case(tmp_path)
    (tmp_path / "other").mkdir()
    _, small_mask, _ = _write_case(tmp_path / "other", 128, 96)
    with pytest.raises(RuntimeError) as raised:  # MONAI's Compose wraps it; the one-line report finds it
        native_resolution_masks()(_preprocessed(image, small_mask))
    message = str(find_spcxr_error(raised.value))
    assert str(small_mask) in message and "the mask is 128 x 96 pixels, its image 256 x 192" in message


def _square(offset: int) -> torch.Tensor:
    mask = torch.zeros(1, 40, 40)
    mask[0, 10 + offset : 30 + offset, 10:30] = 1
    return torch.cat([1 - mask, mask])


def test_spaced_hausdorff_distance_is_in_mm_where_the_spacing_is_known_and_pixels_elsewhere():
    shifted, reference = _square(3), _square(0)
    metric = SpacedHausdorffDistance(percentile=95, save_details=False)
    metric.update(([shifted], [MetaTensor(reference, meta={"spacing": (0.5, 0.5)})]))
    assert float(metric.compute()) == pytest.approx(1.5)  # 3 pixels of 0.5 mm
    metric.reset()
    metric.update(([shifted], [MetaTensor(reference, meta={"spacing": (float("nan"), float("nan"))})]))
    assert float(metric.compute()) == pytest.approx(3.0) and metric.unit == "px"
    with pytest.raises(ValueError, match="HD95 in mm among masks measured in px"):
        metric.update(([shifted], [MetaTensor(reference, meta={"spacing": (0.5, 0.5)})]))
