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

__all__ = ["thumbnails", "near_duplicate_mask", "drop_near_duplicates"]


def thumbnails(paths: Sequence[str | os.PathLike], size: int = 32) -> np.ndarray:
    """(N, size*size) z-scored grey thumbnails (any format :class:`CXRReader` reads)."""
    reader = CXRReader()
    out = np.empty((len(paths), size * size), dtype=np.float32)
    for i, path in enumerate(paths):
        array, _ = reader.read(path)
        thumb = np.asarray(Image.fromarray(array.astype(np.float32)).resize((size, size), Image.BILINEAR))
        thumb = thumb.ravel() - thumb.mean()
        out[i] = thumb / (np.linalg.norm(thumb) + 1e-8)
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
