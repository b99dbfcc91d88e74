"""Committed figures as 256-colour PNGs: plots and reconstruction figures keep their look at a third to two thirds
of the bytes, so the results and releases kept in the repository stay small."""

from __future__ import annotations

import os

from PIL import Image

__all__ = ["save_palette_png"]


def save_palette_png(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Write the image file ``source`` to ``target`` (may be the same path) as a 256-colour PNG (median cut)."""
    with Image.open(source) as image:
        palette = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    palette.save(target, optimize=True)
