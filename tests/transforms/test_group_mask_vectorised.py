"""The vectorised (patch-aligned) GMML mask draw against the round-by-round draw: same distributions of
corrupted fraction, block count and block size; a bounded number of tensor operations; chunk continuation."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from scipy.stats import ks_2samp

from spcxr_monai.transforms import group_mask
from spcxr_monai.transforms.group_mask import _draw_cells, _draw_cells_rounds, _draw_cells_vectorised, group_mask_batch
from spcxr_monai.utils import OpCounter


def _stats(draw, n: int, size: int, align: int, seed: int, **kwargs) -> dict[str, torch.Tensor]:
    """Covered fraction (in pixels), blocks placed and their mean area for ``n`` masks of ``draw``."""
    rows = math.ceil(size / align)
    area = torch.full((rows,), float(align))
    area[-1] = size - align * (rows - 1)
    area = area[:, None] * area[None, :]
    g = torch.Generator().manual_seed(seed)
    target = torch.empty(n).uniform_(0.5 * size**2, 0.75 * size**2, generator=g)
    max_side = max(1, int(0.3 * size) // align)
    cells = draw(n, rows, rows, area, target, max_side, max_side, g, True, **kwargs)
    covered = (cells.mask * area).flatten(1).sum(1)
    assert (covered >= target).all()  # every image reaches its own target
    return {
        "fraction": covered / size**2,
        "blocks": cells.n_blocks.float(),
        "cells": cells.block_cells,
        "shift_r": cells.shift_r,
        "mask": cells.mask,
    }


@pytest.mark.parametrize("size,align", [(128, 16), (224, 16), (100, 16)])  # 100 px: cut border cells
@pytest.mark.parametrize("chunk", [group_mask.BLOCKS_PER_CHUNK, 8])  # 8: most images need several chunks
def test_vectorised_draw_has_the_distributions_of_the_round_by_round_draw(size, align, chunk):
    n = 3000
    rounds = _stats(_draw_cells_rounds, n, size, align, seed=0)
    vector = _stats(functools.partial(_draw_cells_vectorised, chunk=chunk, with_stats=True), n, size, align, seed=1)
    for key in ("fraction", "blocks", "cells"):
        a, b = rounds[key], vector[key]
        assert abs(a.mean() - b.mean()) <= 0.04 * a.mean(), key
        assert abs(a.std() - b.std()) <= 0.1 * a.std() + 1e-3, key
        assert ks_2samp(a.numpy(), b.numpy()).pvalue > 1e-3, key  # same distribution, not only same moments
    # shuffle sources: a masked cell's source row stays inside the grid, a clean cell keeps its own content
    rows = math.ceil(size / align)
    src = torch.arange(rows)[None, :, None] + vector["shift_r"]
    assert ((src >= 0) & (src < rows)).all()
    assert (vector["shift_r"][~vector["mask"]] == 0).all()


def test_vectorised_draw_rejects_nothing_it_should_cover():
    # a single chunk covers every image's target (the chunk is sized so a second one is a rarity)
    g = torch.Generator().manual_seed(3)
    cells = _draw_cells(512, 224, 224, 0.75, 0.3, 16, g, with_sources=False)
    assert cells.n_blocks.max() <= group_mask.BLOCKS_PER_CHUNK
    assert (cells.n_blocks >= 1).all()
    # the blocks kept are the shortest prefix: fractions sit between the target range and one block above it
    frac = cells.mask.float().mean((1, 2))
    assert frac.min() >= 0.5 and frac.max() <= 0.75 + 16 / 196


def _ops(batch: int, size: int) -> int:
    images = torch.randn(batch, 1, size, size)
    g = torch.Generator().manual_seed(0)
    with OpCounter() as counter:
        group_mask_batch(images, align=16, generator=g)
    return counter.count


def test_patch_aligned_batch_costs_a_bounded_number_of_operations():
    counts = {(b, s): _ops(b, s) for b in (4, 32, 256) for s in (128, 224)}
    assert len(set(counts.values())) == 1, counts  # the batch size and the grid do not change the count
    assert max(counts.values()) <= 100, counts


def test_pixel_aligned_masks_keep_the_round_by_round_draw(monkeypatch):
    calls = []
    monkeypatch.setattr(
        group_mask, "_draw_cells_rounds", lambda *a, **k: calls.append(a) or _draw_cells_rounds(*a, **k)
    )
    g = torch.Generator().manual_seed(0)
    group_mask.draw_group_masks(2, 64, 64, align=1, generator=g)
    assert len(calls) == 1
