"""A copy of a CXR folder at the training resolution, for a machine the full-size images cannot travel to.

    python experiments/release/resized_copy.py SRC DST [--image-size 128] [--webp [--quality Q]]
    python experiments/release/resized_copy.py --from-webp SRC DST

Every image under SRC (mask folders skipped) goes through the bundles' own preprocessing (``cxr_preprocessing``:
``LoadCXRd``, checked and air dark; ``Resized``, area; z-scored), is stretched to 0-255 (the z-score is undone by
the next per-image normalisation), rounded to 8 bits and written as a grey PNG at the same relative path under DST. The bundles then read DST with ``image_size`` equal to ``--image-size``:
their resize is the identity, so what reaches the model differs from the full-size files by the 8-bit rounding
alone (at most 0.5 grey level before the per-image normalisation). The lent GPU machine of this project takes
at most 64 MiB with the repository; the 3,728 COVID-QU-Ex train images are 111 MB at 256 px, 32.7 MB as
128-px PNG and 29.3 MB as lossless WebP (``--webp``, for the journey; ``--from-webp`` turns such a copy back into
the PNG files the bundles read, pixel for pixel). ``--quality Q`` makes the WebP lossy: the 12,127 images of
encoder v2 (COVID-QU-Ex train + the pool) are 89 MB lossless and about 23 MB at Q 85 (mean error 1.7 grey levels,
the size of the pool's own JPEG noise), which is what fits beside the repository.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from monai.transforms import Compose
from PIL import Image

from spcxr_monai.data import find_images
from spcxr_monai.transforms import cxr_preprocessing


def resized_copy(src: Path, dst: Path, image_size: int, webp: bool = False, quality: int | None = None) -> int:
    """Write ``src``'s images resized to ``image_size`` under ``dst`` (PNG, or WebP: lossless, or lossy at
    ``quality``); returns how many."""
    load = Compose(cxr_preprocessing(image_size, file_key=None))
    files = find_images(src)
    if not files:
        raise FileNotFoundError(f"{src}: no images")
    for path in files:
        image = np.asarray(load({"image": str(path)})["image"])[0]  # (H, W), z-scored; LoadCXRd refuses constant images
        lo, hi = float(image.min()), float(image.max())
        grey = np.rint((image - lo) / (hi - lo) * 255.0).astype(np.uint8)
        out = dst / path.relative_to(src).with_suffix(".webp" if webp else ".png")
        out.parent.mkdir(parents=True, exist_ok=True)
        webp_options = {"lossless": True} if quality is None else {"quality": quality}
        Image.fromarray(grey).save(out, **({**webp_options, "method": 6} if webp else {"optimize": True}))
    return len(files)


def webp_to_png(src: Path, dst: Path) -> int:
    """Turn a ``--webp`` copy back into grey PNG files at the same relative paths; returns how many."""
    files = sorted(src.rglob("*.webp"))
    if not files:
        raise FileNotFoundError(f"{src}: no .webp images")
    for path in files:
        out = dst / path.relative_to(src).with_suffix(".png")
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.open(path).convert("L").save(out)
    return len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--webp", action="store_true", help="write lossless WebP (smaller) instead of PNG")
    parser.add_argument("--quality", type=int, default=None, help="with --webp: lossy WebP at this quality (0-100)")
    parser.add_argument("--from-webp", action="store_true", help="SRC is a --webp copy: write it back as PNG")
    args = parser.parse_args()
    if args.from_webp:
        written = webp_to_png(args.src, args.dst)
    else:
        written = resized_copy(args.src, args.dst, args.image_size, args.webp, args.quality)
    print(f"{written} images written to {args.dst}")


if __name__ == "__main__":
    main()
