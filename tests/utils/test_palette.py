"""Figures kept in the repository as 256-colour PNGs: few-colour figures unchanged, and the file smaller."""

from __future__ import annotations

import numpy as np
from PIL import Image

from spcxr_monai.utils import save_palette_png


def test_a_figure_with_few_colours_is_kept_exactly_in_fewer_bytes(tmp_path):
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (200, 3), dtype=np.uint8)
    pixels = colours[rng.integers(0, 200, (120, 160))]  # 200 colours, noisy: a hard case for PNG's filters
    source, target = tmp_path / "rgba.png", tmp_path / "palette.png"
    Image.fromarray(np.dstack([pixels, np.full((120, 160), 255, np.uint8)])).save(source)  # RGBA, as matplotlib writes
    save_palette_png(source, target)
    with Image.open(target) as image:
        assert image.mode == "P" and image.size == (160, 120)
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), pixels)
    assert target.stat().st_size < source.stat().st_size
    save_palette_png(target, target)  # in place
    with Image.open(target) as image:
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), pixels)
