"""auto_cache_rate: all images cached where they fit, the share that fits where they do not."""

from __future__ import annotations

import logging

import pytest

from spcxr_monai.data import auto_cache_rate, available_memory


def test_cache_rate_is_what_fits_in_half_the_memory(caplog):
    datalist = {"training": [{}] * 18_000, "validation": [{}] * 2_000}
    one_image = 128 * 128 * 4 * 1.25
    with caplog.at_level(logging.INFO):
        assert auto_cache_rate(datalist, 128, memory=10**10) == 1.0
        rate = auto_cache_rate(datalist, 128, memory=int(20_000 * one_image))  # room for half of them
    assert rate == pytest.approx(0.5, abs=1e-3)
    assert "cache_rate 0.500: 20000 images of 128 px" in caplog.text
    # uint8 needs a quarter of that
    assert auto_cache_rate(datalist, 128, bytes_per_pixel=1, memory=int(20_000 * one_image)) == 1.0


def test_available_memory_is_read_here():
    memory = available_memory()
    assert memory is None or memory > 100 * 2**20
