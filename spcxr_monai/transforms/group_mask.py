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

:func:`group_mask_batch` does this for a (B, C, H, W) batch on any torch device: the loop runs over
block rounds (tens), never over pixels or images, on the small cell grid on the CPU. :class:`RandGroupMask` and
:class:`RandGroupMaskd` wrap it as MONAI transforms for one image.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms import MapTransform, Randomizable, RandomizableTransform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor, ensure_tuple_rep

__all__ = [
    "CORRUPTIONS",
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

CORRUPTIONS = ("noise", "zeros", "shuffle", "replace")
# GMML's defaults, the one source for the transforms, the engine's GMMLPrepareBatch and the pretraining
# bundle (whose train.json repeats them as its parameters; a test keeps the two equal)
GMML_MAX_RATIO = 0.75  # target corrupted fraction drawn in [0.5, 0.75]
GMML_MAX_BLOCK_FRAC = 0.3  # largest block side, as a fraction of the image side
GMML_CORRUPTIONS = ("noise", "replace")  # a batch: noise, or the same window of another image
GMML_SINGLE_IMAGE_CORRUPTIONS = ("noise", "zeros", "shuffle")  # one image alone ("replace" needs a second)
CPU_GEOMETRY_CELLS = 2**20  # batch x grid cells up to which block geometry is drawn on the CPU
MAX_ROUNDS = 10_000  # safety net only: a block of >= 1 grid cell lands on uncovered ground often enough


def _check_args(max_ratio: float, max_block_frac: float, align: int, corruptions: Sequence[str]) -> None:
    if not 0.0 < max_ratio <= 1.0:
        raise ValueError(f"max_ratio must be in (0, 1], got {max_ratio}.")
    if not 0.0 < max_block_frac <= 1.0:
        raise ValueError(f"max_block_frac must be in (0, 1], got {max_block_frac}.")
    if int(align) < 1:
        raise ValueError(f"align must be >= 1, got {align}.")
    unknown = [c for c in corruptions if c not in CORRUPTIONS]
    if unknown or not corruptions:
        raise ValueError(f"corruptions must be a non-empty subset of {CORRUPTIONS}, got {tuple(corruptions)}.")


def _uniform_int(low: torch.Tensor, high: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Integers uniform in [low, high] (inclusive), elementwise, drawn on the generator's device."""
    u = torch.rand(low.shape, generator=generator, device=low.device)
    return low + torch.floor(u * (high - low + 1).to(u.dtype)).long().clamp_max(high - low)


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
    column of cells may be cut by the image border) and expanded to pixels at the end.

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
    gen_device = generator.device
    rows, cols = math.ceil(height / align), math.ceil(width / align)  # grid size in cells
    # pixel area of each cell (border cells may be partial) to measure coverage in pixels
    cell_h = torch.full((rows,), float(align), device=gen_device)
    cell_h[-1] = height - align * (rows - 1)
    cell_w = torch.full((cols,), float(align), device=gen_device)
    cell_w[-1] = width - align * (cols - 1)
    cell_area = cell_h[:, None] * cell_w[None, :]

    low = min(0.5, max_ratio)
    target = (low + (max_ratio - low) * torch.rand(batch, generator=generator, device=gen_device)) * height * width
    max_h = max(1, int(max_block_frac * height) // align)
    max_w = max(1, int(max_block_frac * width) // align)
    one = torch.ones(batch, dtype=torch.long, device=gen_device)
    zero = torch.zeros_like(one)
    grid_r = torch.arange(rows, device=gen_device)[None, :, None]
    grid_c = torch.arange(cols, device=gen_device)[None, None, :]

    # owner[b, r, c]: the round whose block last covered the cell (-1: clean); later blocks win, as
    # painting them one after another would. Source offsets are looked up per round at the end.
    owner = torch.full((batch, rows, cols), -1, dtype=torch.int32, device=gen_device)
    mask = torch.zeros((batch, rows, cols), dtype=torch.bool, device=gen_device)
    covered = torch.zeros(batch, device=gen_device)
    offsets_r, offsets_c = [], []
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
        in_rows = (grid_r >= top[:, None, None]) & (grid_r < (top + h)[:, None, None]) & active[:, None, None]
        in_cols = (grid_c >= left[:, None, None]) & (grid_c < (left + w)[:, None, None])
        block = in_rows & in_cols
        newly = block & ~mask
        # bool reductions over several dims are slow in torch; sum the uint8 view per image instead
        covered += (newly.view(torch.uint8).flatten(1).sum(1, dtype=torch.int32) if align == 1
                    else (newly * cell_area).flatten(1).sum(1))
        mask |= block
        if with_sources:
            owner.masked_fill_(block, round_idx)

    def to_pixels(cells: torch.Tensor) -> torch.Tensor:
        cells = cells.to(device)  # the cell grid crosses to the device, not the align^2 larger pixel map
        if align > 1:
            cells = cells.repeat_interleave(align, 1).repeat_interleave(align, 2)[:, :height, :width]
        return cells

    if not with_sources:
        return to_pixels(mask), None, None
    index = owner.clamp_min(0).long().reshape(batch, -1)
    shift_r = torch.stack(offsets_r, 1).gather(1, index).reshape(owner.shape) * mask
    shift_c = torch.stack(offsets_c, 1).gather(1, index).reshape(owner.shape) * mask
    pix_r = torch.arange(height, device=device)[None, :, None]
    pix_c = torch.arange(width, device=device)[None, None, :]
    src_row = (pix_r + to_pixels(shift_r) * align).clamp(0, height - 1)
    src_col = (pix_c + to_pixels(shift_c) * align).clamp(0, width - 1)
    return to_pixels(mask), src_row, src_col


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
    # A small cell grid's block geometry (tens of rounds of tiny ops, each round checking coverage) is
    # drawn on the CPU: on a GPU those rounds were launch- and sync-bound (H100, ViT-S/16 224 px: GMML
    # step 1186 -> 1699 img/s). Pixel grids (align 1) stay on the device; noise is drawn there too.
    geometry = generator
    if gen_device.type != "cpu" and b * math.ceil(h / align) * math.ceil(w / align) <= CPU_GEOMETRY_CELLS:
        seed = torch.randint(2**62, (1,), generator=generator, device=gen_device)
        geometry = torch.Generator(device="cpu").manual_seed(int(seed.item()))
    mask, src_row, src_col = draw_group_masks(
        b, h, w, max_ratio, max_block_frac, align, geometry, device, with_sources="shuffle" in corruptions
    )
    if corruption_ids is None:
        corruption_ids = torch.randint(len(corruptions), (b,), generator=geometry)
    corruption_ids = corruption_ids.to(device)

    fill = torch.zeros_like(images)
    kind = {name: (corruption_ids == i)[:, None, None, None] for i, name in enumerate(corruptions)}
    if "noise" in kind:
        noise = torch.randn(images.shape, generator=generator, device=gen_device, dtype=torch.float32)
        fill = torch.where(kind["noise"], noise.to(device=device, dtype=images.dtype), fill)
    if "shuffle" in kind:
        flat = (src_row * w + src_col).reshape(b, 1, h * w).expand(b, c, h * w)
        shuffled = images.reshape(b, c, h * w).gather(2, flat).reshape(b, c, h, w)
        fill = torch.where(kind["shuffle"], shuffled, fill)
    if "replace" in kind and bool(kind["replace"].any()):
        if replace_source is None:
            if b < 2:
                raise ValueError("'replace' needs a second image: pass replace_source or a batch of >= 2.")
            # a random derangement: a random order, each image takes from the next one in it
            order = torch.randperm(b, generator=geometry).to(device)
            partner = torch.empty_like(order)
            partner[order] = order.roll(-1)
            replace_source = images[partner]
        fill = torch.where(kind["replace"], replace_source.to(images), fill)
    mask = mask[:, None]
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
        self.target_keys = ensure_tuple_rep(target_keys, len(self.keys)) if target_keys else tuple(
            f"{k}_target" for k in self.keys
        )
        self.mask_keys = ensure_tuple_rep(mask_keys, len(self.keys)) if mask_keys else tuple(
            f"{k}_mask" for k in self.keys
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
