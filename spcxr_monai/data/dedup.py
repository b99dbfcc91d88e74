"""Near-duplicate detection between image sets by thumbnail correlation.

Public CXR collections share sources: a held-out or drift set must drop images that (nearly)
appear in the training data. Each image becomes a 32x32 grey thumbnail, z-scored; two images are
near-duplicates when the Pearson correlation of their thumbnails exceeds a threshold (0.98 finds
the re-encoded / resized copies in COVID-QU-Ex vs the Kermany pediatric set).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from spcxr_monai.data.cxr_reader import CXRReader

__all__ = ["THUMBNAIL_SIZE", "drop_near_duplicates", "near_duplicate_mask", "thumbnail", "thumbnails"]

THUMBNAIL_SIZE = 32


def thumbnail(image: np.ndarray, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """(size * size,) float32 unit-norm, zero-mean thumbnail of a (rows, cols) image, area-averaged (aspect
    ratio not kept): the dot product of two is the Pearson correlation of the thumbnails."""
    small = np.asarray(
        Image.fromarray(np.asarray(image, np.float32), mode="F").resize((size, size), Image.Resampling.BOX)
    )
    small = small.ravel() - small.mean()
    return (small / (np.linalg.norm(small) + 1e-8)).astype(np.float32)


def thumbnails(paths: Sequence[str | os.PathLike], size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """(N, size*size) :func:`thumbnail` of each file (any format :class:`CXRReader` reads)."""
    reader = CXRReader()
    out = np.empty((len(paths), size * size), dtype=np.float32)
    for i, path in enumerate(paths):
        out[i] = thumbnail(reader.read(path)[0], size)
    return out


def near_duplicate_mask(
    query: np.ndarray, reference: np.ndarray, threshold: float = 0.98, chunk: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """For each query thumbnail: does any reference thumbnail correlate above ``threshold``?

    Returns ``(is_duplicate (Nq,) bool, best_correlation (Nq,))``.
    """
    best = np.full(len(query), -1.0, dtype=np.float32)
    for start in range(0, len(reference), chunk):
        corr = query @ reference[start : start + chunk].T  # rows are unit vectors: dot = correlation
        best = np.maximum(best, corr.max(axis=1))
    return best > threshold, best


def drop_near_duplicates(
    items: Sequence[dict], reference: Sequence[dict], threshold: float = 0.98, key: str = "image"
) -> tuple[list[dict], list[dict]]:
    """Split ``items`` into (kept, dropped): dropped have a near-duplicate among ``reference``."""
    dup, best = near_duplicate_mask(
        thumbnails([i[key] for i in items]), thumbnails([r[key] for r in reference]), threshold
    )
    kept = [dict(item) for item, d in zip(items, dup) if not d]
    dropped = [{**item, "max_correlation": float(c)} for item, d, c in zip(items, dup, best) if d]
    return kept, dropped
