"""The 128-px copy of the train images that travels to a lent GPU: what the bundles read from it is what they
read from the full-size files, up to 8-bit rounding, and the WebP journey is lossless."""

from __future__ import annotations

import numpy as np
import pytest
from monai.transforms import Compose

from spcxr_monai.transforms import cxr_preprocessing


@pytest.fixture(scope="module")
def resized_copy(load_script):
    return load_script("release/resized_copy.py")


def test_copy_reads_as_the_original_and_webp_round_trips(resized_copy, shared_data, tmp_path):
    src = tmp_path / "src"
    originals = sorted((shared_data / "covid-qu-ex" / "train" / "normal" / "images").glob("*.png"))[:3]
    for path in originals:
        (src / "normal" / "images").mkdir(parents=True, exist_ok=True)
        (src / "normal" / "images" / path.name).symlink_to(path)
    (src / "normal" / "lung_masks").mkdir()
    (src / "normal" / "lung_masks" / originals[0].name).symlink_to(originals[0])  # masks are not copied

    assert resized_copy.resized_copy(src, tmp_path / "png", 128) == 3
    assert resized_copy.resized_copy(src, tmp_path / "webp", 128, webp=True) == 3
    assert not (tmp_path / "png" / "normal" / "lung_masks").exists()
    assert resized_copy.webp_to_png(tmp_path / "webp", tmp_path / "back") == 3

    load = Compose(cxr_preprocessing(128, file_key=None))
    for path in originals:
        full = np.asarray(load({"image": str(path)})["image"])
        copy = np.asarray(load({"image": str(tmp_path / "png" / "normal" / "images" / path.name)})["image"])
        back = np.asarray(load({"image": str(tmp_path / "back" / "normal" / "images" / path.name)})["image"])
        assert copy.shape == full.shape == (1, 128, 128)
        np.testing.assert_array_equal(back, copy)  # WebP lossless
        assert np.abs(copy - full).max() < 0.05  # z-scored: 8-bit rounding only (a wrong resize moves far more)


def test_empty_folder_is_an_error_naming_it(resized_copy, tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        resized_copy.resized_copy(tmp_path, tmp_path / "out", 128)
    with pytest.raises(FileNotFoundError, match="no .webp"):
        resized_copy.webp_to_png(tmp_path, tmp_path / "out")
