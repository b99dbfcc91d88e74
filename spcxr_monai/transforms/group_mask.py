"""GMML group masking: corrupt groups of connected patches of an image.

Group-masked model learning (Atito et al., SiT / GMML) corrupts random rectangular blocks until a
random fraction of the image is covered, so whole anatomical structures disappear and the network
must reconstruct them from context. This module re-implements the published algorithm (not the
GPL reference code):

1. draw a target corrupted fraction ``u ~ U[min(0.5, max_ratio), max_ratio]`` per image;
2. repeatedly place a block whose sides are random up to ``max_block_frac`` of the image side,
   snapped to an ``align`` grid, until at least ``u`` of the pixels are covered;
3. fill the covered pixels with one corruption type drawn per image: ``noise`` (N(0, 1) in
   normalised intensity), ``zeros``, ``shuffle`` (each block takes a same-size block from elsewhere
   in the same image) or ``replace`` (the same window from another image of the batch).

:func:`group_mask_batch` does this for a (B, C, H, W) batch on any torch device. On a patch grid (cells of
``align`` pixels, up to 32x32 cells) every block of the batch is placed at once: each image draws a chunk of
candidate blocks and keeps the shortest prefix that covers its target, which is what step 2 keeps, in about 90
tensor operations whatever the batch size (the round-by-round loop took 4,700-7,900 at B = 32-256).
Pixel-aligned grids keep the loop over block rounds (tens), never over pixels or images.
:class:`RandGroupMask` and :class:`RandGroupMaskd` wrap it as MONAI transforms for one image.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from enum import Enum
from typing import NamedTuple

import numpy as np
import torch
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms import MapTransform, Randomizable, RandomizableTransform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor, ensure_tuple_rep

from spcxr_monai.utils.options import choose

__all__ = [
    "CORRUPTIONS",
    "Corruption",
    "GMML_CORRUPTIONS",
    "GMML_MAX_BLOCK_FRAC",
    "GMML_MAX_RATIO",
    "GMML_SINGLE_IMAGE_CORRUPTIONS",
    "draw_group_masks",
    "group_mask_batch",
    "RandGroupMask",
    "RandGroupMaskd",
    "RandGroupMaskD",
    "RandGroupMaskDict",
]


class Corruption(str, Enum):
    """What fills a corrupted block (see the module docstring)."""

    NOISE = "noise"
    ZEROS = "zeros"
    SHUFFLE = "shuffle"
    REPLACE = "replace"


CORRUPTIONS = tuple(c.value for c in Corruption)
# GMML's defaults, the one source for the transforms, the engine's GMMLPrepareBatch and the pretraining
# bundle (whose train.json repeats them as its parameters; a test keeps the two equal)
GMML_MAX_RATIO = 0.75  # target corrupted fraction drawn in [0.5, 0.75]
GMML_MAX_BLOCK_FRAC = 0.3  # largest block side, as a fraction of the image side
GMML_CORRUPTIONS = ("noise", "replace")  # a batch: noise, or the same window of another image
GMML_SINGLE_IMAGE_CORRUPTIONS = ("noise", "zeros", "shuffle")  # one image alone ("replace" needs a second)
CPU_GEOMETRY_CELLS = 2**20  # batch x grid cells up to which round-by-round geometry is drawn on the CPU
VECTORISED_MAX_CELLS = 32 * 32  # cell grids up to this size place all blocks at once (patch-aligned masks)
BLOCKS_PER_CHUNK = 128  # candidate blocks per image and chunk: 8x8 to 28x28 cells need 32-49 on average, <= 120
MAX_ROUNDS = 10_000  # safety net only: a block of >= 1 grid cell lands on uncovered ground often enough


def _check_args(max_ratio: float, max_block_frac: float, align: int, corruptions: Sequence[str]) -> None:
    if not 0.0 < max_ratio <= 1.0:
        raise ValueError(f"max_ratio must be in (0, 1], got {max_ratio}.")
    if not 0.0 < max_block_frac <= 1.0:
        raise ValueError(f"max_block_frac must be in (0, 1], got {max_block_frac}.")
    if int(align) < 1:
        raise ValueError(f"align must be >= 1, got {align}.")
    if not corruptions:
        raise ValueError(f"corruptions must be a non-empty subset of {CORRUPTIONS}, got none.")
    for corruption in corruptions:
        choose("corruptions", corruption, Corruption)


def _uniform_int(low: torch.Tensor, high: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Integers uniform in [low, high] (inclusive), elementwise, drawn on the generator's device."""
    u = torch.rand(low.shape, generator=generator, device=low.device)
    return low + torch.floor(u * (high - low + 1).to(u.dtype)).long().clamp_max(high - low)


class _CellMasks(NamedTuple):
    """Block masks on the cell grid, as both draws return them."""

    mask: torch.Tensor  # bool (B, rows, cols), True where covered
    shift_r: torch.Tensor | None  # long (B, rows, cols): row offset (cells) of each covered cell's shuffle source
    shift_c: torch.Tensor | None
    n_blocks: torch.Tensor  # long (B,): blocks placed until the target was met
    block_cells: torch.Tensor | None  # float (B,): their mean area in cells, clipped at the border (to compare draws)


def _draw_cells_rounds(
    batch: int,
    rows: int,
    cols: int,
    cell_area: torch.Tensor | float,
    target: torch.Tensor,
    max_h: int,
    max_w: int,
    generator: torch.Generator,
    with_sources: bool,
) -> _CellMasks:
    """One block per image per round until every image is covered to its target: tens of rounds of a few
    tensor operations each (the pixel grid's path; the cell grid's reference)."""
    device = generator.device
    one = torch.ones(batch, dtype=torch.long, device=device)
    zero = torch.zeros_like(one)
    grid_r = torch.arange(rows, device=device)[None, :, None]
    grid_c = torch.arange(cols, device=device)[None, None, :]
    # owner[b, r, c]: the round whose block last covered the cell (-1: clean); later blocks win, as
    # painting them one after another would. Source offsets are looked up per round at the end.
    owner = torch.full((batch, rows, cols), -1, dtype=torch.int32, device=device)
    mask = torch.zeros((batch, rows, cols), dtype=torch.bool, device=device)
    covered = torch.zeros(batch, device=device)
    n_blocks = torch.zeros(batch, dtype=torch.long, device=device)
    block_cells = torch.zeros(batch, device=device)
    offsets_r, offsets_c = [], []
    unit_cells = isinstance(cell_area, float) and cell_area == 1.0  # pixel grid: count cells, no areas to sum
    for round_idx in range(MAX_ROUNDS):
        active = covered < target
        if not bool(active.any()):
            break
        h = _uniform_int(one, one * max_h, generator)
        w = _uniform_int(one, one * max_w, generator)
        top = _uniform_int(zero, one * (rows - 1), generator)
        left = _uniform_int(zero, one * (cols - 1), generator)
        h, w = torch.minimum(h, rows - top), torch.minimum(w, cols - left)  # clip at the border
        offsets_r.append(_uniform_int(zero, rows - h, generator) - top)
        offsets_c.append(_uniform_int(zero, cols - w, generator) - left)
        n_blocks += active
        block_cells += (h * w) * active
        in_rows = (grid_r >= top[:, None, None]) & (grid_r < (top + h)[:, None, None]) & active[:, None, None]
        in_cols = (grid_c >= left[:, None, None]) & (grid_c < (left + w)[:, None, None])
        block = in_rows & in_cols
        newly = block & ~mask
        # bool reductions over several dims are slow in torch; sum the uint8 view per image instead
        covered += (
            newly.view(torch.uint8).flatten(1).sum(1, dtype=torch.int32)
            if unit_cells
            else (newly * cell_area).flatten(1).sum(1)
        )
        mask |= block
        if with_sources:
            owner.masked_fill_(block, round_idx)
    block_cells = block_cells / n_blocks.clamp_min(1)
    if not with_sources:
        return _CellMasks(mask, None, None, n_blocks, block_cells)
    index = owner.clamp_min(0).long().reshape(batch, -1)
    shift_r = torch.stack(offsets_r, 1).gather(1, index).reshape(owner.shape) * mask
    shift_c = torch.stack(offsets_c, 1).gather(1, index).reshape(owner.shape) * mask
    return _CellMasks(mask, shift_r, shift_c, n_blocks, block_cells)


def _draw_cells_vectorised(
    batch: int,
    rows: int,
    cols: int,
    cell_area: torch.Tensor | float,
    target: torch.Tensor,
    max_h: int,
    max_w: int,
    generator: torch.Generator,
    with_sources: bool,
    with_stats: bool = False,
    chunk: int = BLOCKS_PER_CHUNK,
) -> _CellMasks:
    """The draw of :func:`_draw_cells_rounds` with ``chunk`` candidate blocks per image placed at once.

    Each image keeps the shortest prefix of its i.i.d. blocks that covers its target, which is what
    placing one block per round until the target is met keeps: the same distribution of masks, block
    counts and sizes in about 60 tensor operations, whatever the batch size and however many blocks an
    image needs. A further chunk is drawn only while some image is not covered yet (none of 20,000
    images needed one at 128 blocks, on 8x8 to 28x28 cells with GMML's defaults). ``with_stats`` adds the
    blocks' mean area (which the round-by-round draw always gives), to compare the two draws."""
    device = generator.device
    grid_r = torch.arange(rows, device=device)
    grid_c = torch.arange(cols, device=device)
    steps = torch.arange(chunk, device=device)
    never = MAX_ROUNDS + chunk
    first = torch.full((batch, rows, cols), never, dtype=torch.long, device=device)  # round that first covers a cell
    n_blocks = torch.zeros(batch, dtype=torch.long, device=device)  # 0 while the target is not met
    covered: torch.Tensor | float = 0.0  # (B, 1) once a chunk did not cover every image
    sum_cells = shift = None
    for start in range(0, MAX_ROUNDS, chunk):
        size = (batch, chunk)
        h = torch.randint(1, max_h + 1, size, generator=generator, device=device)
        w = torch.randint(1, max_w + 1, size, generator=generator, device=device)
        top = torch.randint(rows, size, generator=generator, device=device)
        left = torch.randint(cols, size, generator=generator, device=device)
        h, w = torch.minimum(h, rows - top), torch.minimum(w, cols - left)  # clip at the border
        in_rows = (grid_r >= top[..., None]) & (grid_r < (top + h)[..., None])  # (B, K, rows)
        in_cols = (grid_c >= left[..., None]) & (grid_c < (left + w)[..., None])  # (B, K, cols)
        block = (in_rows[..., :, None] & in_cols[..., None, :]).view(torch.uint8)  # (B, K, rows, cols)
        hit, first_k = block.max(1)  # ties give the first index: the chunk's first block over each cell
        newly = hit.view(torch.bool) & (first == never)
        first = torch.where(newly, start + first_k, first)
        # coverage after each block: the area each block covers first, summed in order
        gain = torch.zeros((batch, chunk + 1), device=device)
        gain.scatter_add_(1, torch.where(newly, first_k, chunk).flatten(1), (newly * cell_area).flatten(1))
        reached = (gain[:, :chunk].cumsum(1) + covered) >= target[:, None]  # monotone along the chunk
        open_ = n_blocks == 0
        done = open_ & reached[:, -1]
        kept = torch.where(reached[:, -1], chunk + 1 - reached.sum(1), chunk) * open_  # blocks kept from this chunk
        n_blocks = torch.where(done, start + kept, n_blocks)
        if with_stats or with_sources:
            used = steps < kept[:, None]  # (B, K)
        if with_stats:
            sum_cells = (h * w * used).sum(1) + (0 if sum_cells is None else sum_cells)
        if with_sources:
            # the last kept block over a cell decides where its content comes from, as painting in order would
            last_hit, from_end = (block * used[..., None, None]).flip(1).max(1)
            last = torch.where(last_hit.view(torch.bool), chunk - from_end, 0).flatten(1)  # 1 + block index; 0: none
            u = torch.rand((2, batch, chunk), generator=generator, device=device)
            src_r = (u[0] * (rows - h + 1)).long().clamp_max(rows - h) - top  # source offsets in cells
            src_c = (u[1] * (cols - w + 1)).long().clamp_max(cols - w) - left
            pick = (last - 1).clamp_min(0)
            here = torch.stack([src_r.gather(1, pick), src_c.gather(1, pick)])
            shift = here if shift is None else torch.where(last > 0, here, shift)
        if not bool((n_blocks == 0).any()):
            break
        covered = covered + gain[:, :chunk].sum(1, keepdim=True)
    # cells first covered after an image's last kept block stay clean
    mask = first < n_blocks[:, None, None]
    shift_r = shift_c = None
    if with_sources:
        shift_r, shift_c = (s.view(batch, rows, cols) * mask for s in shift)  # type: ignore[union-attr]  # drawn above
    block_cells = None if sum_cells is None else sum_cells / n_blocks
    return _CellMasks(mask, shift_r, shift_c, n_blocks, block_cells)


def _draw_cells(
    batch: int,
    height: int,
    width: int,
    max_ratio: float,
    max_block_frac: float,
    align: int,
    generator: torch.Generator,
    with_sources: bool,
) -> _CellMasks:
    """GMML block masks on the ``align`` cell grid, drawn on the generator's device: all blocks at once on
    a cell grid of up to ``VECTORISED_MAX_CELLS`` cells (patch-aligned masks), round by round on larger
    (pixel) grids, whose (B, blocks, rows, cols) candidates would not fit."""
    device = generator.device
    rows, cols = math.ceil(height / align), math.ceil(width / align)  # grid size in cells
    # pixel area of each cell to measure coverage in pixels: a number, or a grid where border cells are cut
    cell_area: torch.Tensor | float = float(align * align)
    if height % align or width % align:
        cell_h = torch.full((rows,), float(align), device=device)
        cell_h[-1] = height - align * (rows - 1)
        cell_w = torch.full((cols,), float(align), device=device)
        cell_w[-1] = width - align * (cols - 1)
        cell_area = cell_h[:, None] * cell_w[None, :]
    low, area = min(0.5, max_ratio), height * width
    target = torch.empty(batch, device=device).uniform_(low * area, max_ratio * area, generator=generator)
    max_h = max(1, int(max_block_frac * height) // align)
    max_w = max(1, int(max_block_frac * width) // align)
    draw = _draw_cells_vectorised if rows * cols <= VECTORISED_MAX_CELLS else _draw_cells_rounds
    return draw(batch, rows, cols, cell_area, target, max_h, max_w, generator, with_sources)


def draw_group_masks(
    batch: int,
    height: int,
    width: int,
    max_ratio: float = GMML_MAX_RATIO,
    max_block_frac: float = GMML_MAX_BLOCK_FRAC,
    align: int = 1,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    with_sources: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Draw ``batch`` independent GMML block masks.

    Blocks are drawn on the ``align`` grid (one cell = ``align`` x ``align`` pixels; the last row and
    column of cells may be cut by the image border) and expanded to pixels at the end. On a cell grid
    of up to ``VECTORISED_MAX_CELLS`` cells (patch-aligned masks: 8x8 cells at 128 px / 16, 14x14 at
    224 px / 16) all blocks of the batch are placed at once, a bounded number of tensor operations
    whatever the batch size; pixel-aligned grids place one block per image per round.

    Args:
        batch: number of masks B.
        height: image height H in pixels.
        width: image width W in pixels.
        max_ratio: upper bound of the target covered fraction; the target is uniform in
            ``[min(0.5, max_ratio), max_ratio]``.
        max_block_frac: a block side is at most this fraction of the image side (and at least one cell).
        align: grid step in pixels that block corners and sides snap to (e.g. the ViT patch size).
        generator: torch random generator; its device decides where random numbers are drawn.
        device: where the masks are built; defaults to the generator's device.
        with_sources: also build the ``shuffle`` source maps (else they are returned as None).

    Returns:
        ``(mask, src_row, src_col)``: ``mask`` bool (B, H, W), True where corrupted; ``src_row`` and
        ``src_col`` long (B, H, W), for each pixel the pixel of the same image its ``shuffle``
        content comes from (identity outside the mask).
    """
    _check_args(max_ratio, max_block_frac, align, CORRUPTIONS)
    if generator is None:
        generator = torch.Generator(device=device or "cpu")
        generator.seed()  # a fresh generator always starts from the same default seed
    device = torch.device(device) if device is not None else generator.device
    cells = _draw_cells(batch, height, width, max_ratio, max_block_frac, align, generator, with_sources)

    def to_pixels(grid: torch.Tensor) -> torch.Tensor:
        grid = grid.to(device)  # the cell grid crosses to the device, not the align^2 larger pixel map
        if align > 1:
            b, rows, cols = grid.shape
            grid = grid[:, :, None, :, None].expand(b, rows, align, cols, align).reshape(b, rows * align, -1)
            grid = grid[:, :height, :width]
        return grid

    if not with_sources:
        return to_pixels(cells.mask), None, None
    pix_r = torch.arange(height, device=device)[None, :, None]
    pix_c = torch.arange(width, device=device)[None, None, :]
    assert cells.shift_r is not None and cells.shift_c is not None  # drawn with_sources
    src_row = (pix_r + to_pixels(cells.shift_r) * align).clamp(0, height - 1)
    src_col = (pix_c + to_pixels(cells.shift_c) * align).clamp(0, width - 1)
    return to_pixels(cells.mask), src_row, src_col


def group_mask_batch(
    images: torch.Tensor,
    max_ratio: float = GMML_MAX_RATIO,
    max_block_frac: float = GMML_MAX_BLOCK_FRAC,
    align: int = 1,
    corruptions: Sequence[str] = GMML_CORRUPTIONS,
    generator: torch.Generator | None = None,
    corruption_ids: torch.Tensor | None = None,
    replace_source: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GMML-corrupt a batch of images, each with its own mask and corruption type.

    Args:
        images: (B, C, H, W) tensor, intensities normalised (``noise`` draws N(0, 1)).
        max_ratio: upper bound of the covered fraction (see :func:`draw_group_masks`).
        max_block_frac: largest block side as a fraction of the image side.
        align: grid step in pixels for block corners and sides.
        corruptions: the types to choose from, one per image, uniformly.
        generator: torch generator on ``images.device`` (or the CPU); seeded for reproducible masks.
        corruption_ids: optional (B,) indices into ``corruptions`` to fix each image's type.
        replace_source: optional (B, C, H, W) images whose windows fill ``replace`` blocks; by default
            each image takes them from another image of the batch (a random derangement).

    Returns:
        ``(corrupted, mask)``: corrupted (B, C, H, W), same dtype as ``images``; mask float
        (B, 1, H, W), 1 where corrupted.

    Raises:
        ValueError: bad arguments, or ``replace`` for a batch of one image without ``replace_source``.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}.")
    corruptions = tuple(corruptions)
    _check_args(max_ratio, max_block_frac, align, corruptions)
    b, c, h, w = images.shape
    device = images.device
    if generator is None:
        generator = torch.Generator(device="cpu")
        generator.seed()
    gen_device = generator.device
    # Round-by-round geometry on a small grid (tens of rounds of tiny ops, each checking coverage) is drawn
    # on the CPU: on a GPU those rounds were launch- and sync-bound (H100, ViT-S/16 224 px: GMML step 1186
    # -> 1699 img/s). The vectorised draw (patch-aligned grids) and large pixel grids stay on the device.
    geometry = generator
    cells = math.ceil(h / align) * math.ceil(w / align)
    if gen_device.type != "cpu" and VECTORISED_MAX_CELLS < cells and b * cells <= CPU_GEOMETRY_CELLS:
        seed = torch.randint(2**62, (1,), generator=generator, device=gen_device)
        geometry = torch.Generator(device="cpu").manual_seed(int(seed.item()))
    mask, src_row, src_col = draw_group_masks(
        b, h, w, max_ratio, max_block_frac, align, geometry, device, with_sources="shuffle" in corruptions
    )
    if corruption_ids is None:
        corruption_ids = torch.randint(len(corruptions), (b,), generator=geometry)
    corruption_ids = corruption_ids.to(device)

    # the content of the corrupted pixels, built per type and picked per image: one full-size pass per type
    ids = corruption_ids.view(b, 1, 1, 1)
    fill = None
    for index, name in enumerate(corruptions):
        if name == "noise":
            content = torch.randn(images.shape, generator=generator, device=gen_device).to(images)
        elif name == "zeros":
            content = torch.zeros_like(images)
        elif name == "shuffle":
            flat = (src_row * w + src_col).reshape(b, 1, h * w).expand(b, c, h * w)  # type: ignore[union-attr,operator]  # drawn with_sources
            content = images.reshape(b, c, h * w).gather(2, flat).reshape(b, c, h, w)
        elif replace_source is not None:
            content = replace_source.to(images)
        elif b >= 2:
            # a random derangement: a random order, each image takes from the next one in it
            order = torch.randperm(b, generator=geometry).to(device)
            partner = torch.empty_like(order)
            partner[order] = order.roll(-1)
            content = images[partner]
        elif bool((corruption_ids == index).any()):
            raise ValueError("'replace' needs a second image: pass replace_source or a batch of >= 2.")
        else:
            continue
        fill = content if fill is None else torch.where(ids == index, content, fill)
    mask = mask[:, None]
    assert fill is not None  # every image drew one of the corruptions
    return torch.where(mask, fill, images), mask.to(images.dtype)


class RandGroupMask(RandomizableTransform):
    """GMML group masking of one channel-first image, as a MONAI randomizable transform.

    ``randomize()`` draws the corruption type and a seed from ``self.R``; ``__call__`` builds the
    mask with :func:`group_mask_batch`, so the array and the batched path share one algorithm.

    Args:
        max_ratio: upper bound of the corrupted fraction; the target is uniform in
            ``[min(0.5, max_ratio), max_ratio]``. Default ``GMML_MAX_RATIO`` (0.75).
        max_block_frac: largest block side as a fraction of the image side. Default ``GMML_MAX_BLOCK_FRAC`` (0.3).
        align: grid step (pixels) of block corners and sides, e.g. the ViT patch size. Default 1.
        corruptions: types to choose from per image: ``noise``, ``zeros``, ``shuffle``, ``replace``
            (``replace`` needs ``replace_source`` at call time). Default ``GMML_SINGLE_IMAGE_CORRUPTIONS``.
        prob: probability of corrupting at all; otherwise the image is returned with an empty mask.

    Call returns ``(corrupted, mask)``: corrupted has the input's shape (C, H, W) and type
    (numpy or torch, MetaTensor meta kept); mask has shape (1, H, W), 1 where corrupted.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        max_ratio: float = GMML_MAX_RATIO,
        max_block_frac: float = GMML_MAX_BLOCK_FRAC,
        align: int = 1,
        corruptions: Sequence[str] = GMML_SINGLE_IMAGE_CORRUPTIONS,
        prob: float = 1.0,
    ) -> None:
        _check_args(max_ratio, max_block_frac, align, tuple(corruptions))
        RandomizableTransform.__init__(self, prob)
        self.max_ratio = max_ratio
        self.max_block_frac = max_block_frac
        self.align = int(align)
        self.corruptions = tuple(corruptions)
        self._seed = 0
        self._corruption = 0

    def randomize(self, data: object = None) -> None:
        super().randomize(None)  # whether to corrupt at all, with probability ``prob``
        self._seed = int(self.R.randint(0, 2**31 - 1))
        self._corruption = int(self.R.randint(len(self.corruptions)))

    @property
    def corruption(self) -> str:
        """The corruption type of the last draw."""
        return self.corruptions[self._corruption]

    def __call__(
        self, img: NdarrayOrTensor, replace_source: NdarrayOrTensor | None = None, randomize: bool = True
    ) -> tuple[NdarrayOrTensor, NdarrayOrTensor]:
        """
        Args:
            img: channel-first image (C, H, W), numpy or torch.
            replace_source: image of the same shape whose windows fill ``replace`` blocks.
            randomize: draw new parameters first; False reuses the last draw (same mask).
        """
        if randomize:
            self.randomize()
        if img.ndim != 3:
            raise ValueError(f"RandGroupMask expects a channel-first 2D image (C, H, W), got shape {img.shape}.")
        x = convert_to_tensor(img, track_meta=False)
        if not self._do_transform:
            mask = torch.zeros((1, *x.shape[1:]), dtype=x.dtype if x.is_floating_point() else torch.float32)
            return img, convert_to_dst_type(mask, img, dtype=mask.dtype)[0]
        x = x.float() if not x.is_floating_point() else x
        if self.corruption == "replace" and replace_source is None:
            raise ValueError("RandGroupMask drew 'replace' but no replace_source was given.")
        src = None if replace_source is None else convert_to_tensor(replace_source, track_meta=False)[None].to(x)
        generator = torch.Generator(device="cpu").manual_seed(self._seed)
        corrupted, mask = group_mask_batch(
            x[None].cpu() if x.device.type != "cpu" else x[None],
            self.max_ratio,
            self.max_block_frac,
            self.align,
            self.corruptions,
            generator=generator,
            corruption_ids=torch.tensor([self._corruption]),
            replace_source=None if src is None else src.cpu(),
        )
        out = convert_to_dst_type(corrupted[0].to(x.device), img, dtype=corrupted.dtype)[0]
        return out, convert_to_dst_type(mask[0].to(x.device), img, dtype=mask.dtype)[0]


class RandGroupMaskd(Randomizable, MapTransform):
    """Dictionary version of :class:`RandGroupMask`: corrupted image, clean target and mask.

    Each key's image is replaced by its corrupted version; the clean image is kept under
    ``target_keys`` (the reconstruction target) and the mask (1, H, W) under ``mask_keys``. All keys
    share one draw (same mask and corruption type).

    Args:
        keys: keys of the images to corrupt.
        target_keys: where to keep each clean image; default ``"<key>_target"``.
        mask_keys: where to write each mask; default ``"<key>_mask"``.
        max_ratio, max_block_frac, align, corruptions, prob: as in :class:`RandGroupMask`.
        replace_key: optional key holding the image used by ``replace`` blocks.
        allow_missing_keys: don't raise when a key is absent.
    """

    backend = RandGroupMask.backend

    def __init__(
        self,
        keys: KeysCollection,
        target_keys: KeysCollection | None = None,
        mask_keys: KeysCollection | None = None,
        max_ratio: float = GMML_MAX_RATIO,
        max_block_frac: float = GMML_MAX_BLOCK_FRAC,
        align: int = 1,
        corruptions: Sequence[str] = GMML_SINGLE_IMAGE_CORRUPTIONS,
        prob: float = 1.0,
        replace_key: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.target_keys = (
            ensure_tuple_rep(target_keys, len(self.keys)) if target_keys else tuple(f"{k}_target" for k in self.keys)
        )
        self.mask_keys = (
            ensure_tuple_rep(mask_keys, len(self.keys)) if mask_keys else tuple(f"{k}_mask" for k in self.keys)
        )
        self.replace_key = replace_key
        self.masker = RandGroupMask(max_ratio, max_block_frac, align, corruptions, prob)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> RandGroupMaskd:
        super().set_random_state(seed, state)
        self.masker.set_random_state(seed, state)
        return self

    def randomize(self, data: object = None) -> None:
        self.masker.randomize()

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        self.randomize()
        replace_source = d.get(self.replace_key) if self.replace_key else None
        for key, target_key, mask_key in self.key_iterator(d, self.target_keys, self.mask_keys):
            d[target_key] = d[key]
            d[key], d[mask_key] = self.masker(d[key], replace_source=replace_source, randomize=False)
        return d


RandGroupMaskD = RandGroupMaskDict = RandGroupMaskd
