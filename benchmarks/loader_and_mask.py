"""Decode throughput of LoadCXR, and the cost of GMML group masking next to MONAI's RandCoarseDropout.

    python benchmarks/loader_and_mask.py [--data ../shared/data] [--repeats 3]

Prints Markdown tables. CPU only (the group mask's batched path also runs on GPU: pass --device cuda).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from monai.transforms import RandCoarseDropout

from spcxr_monai.data import shared_data_root
from spcxr_monai.transforms import LoadCXR, RandGroupMask, group_mask_batch


def _rate(fn, items, repeats: int) -> tuple[float, float]:
    """(items per second, seconds per item), best of ``repeats`` passes."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return len(items) / best, best / len(items)


def bench_loader(root: Path, repeats: int) -> None:
    load = LoadCXR()
    dicoms = [p for p in sorted((root / "dicom").glob("*.dcm")) if "broken" not in p.name]
    pngs = sorted((root / "covid-qu-ex" / "train" / "covid" / "images").glob("*.png"))[:200]
    print("\n## LoadCXR decode throughput (1 process, CPU)\n")
    print("| files | n | images/s | ms/image |")
    print("|---|---|---|---|")
    for p in dicoms:
        rate, sec = _rate(load, [p], repeats)
        print(f"| DICOM {p.name} ({load(p).shape[1]}x{load(p).shape[2]}) | 1 | {rate:.2f} | {sec * 1e3:.0f} |")
    rate, sec = _rate(load, pngs, repeats)
    print(f"| PNG 256x256 8-bit (COVID-QU-Ex) | {len(pngs)} | {rate:.0f} | {sec * 1e3:.2f} |")


def bench_masks(device: str, repeats: int, size: int = 224, batch: int = 64) -> None:
    torch.manual_seed(0)
    images = torch.randn(batch, 1, size, size, device=device)
    side = int(0.3 * size)
    # RandCoarseDropout with holes of similar size (16 px .. 30% of the side); enough holes to cover
    # about 0.6 of the image after overlaps, like GMML's target
    coarse = RandCoarseDropout(holes=9, spatial_size=16, max_holes=18, max_spatial_size=side, fill_value=0, prob=1.0)
    coarse.set_random_state(0)
    rows = []
    for align in (1, 16):
        per_image = RandGroupMask(align=align, corruptions=("noise", "zeros", "shuffle")).set_random_state(0)
        _, sec = _rate(per_image, list(images.cpu()), repeats)
        gen = torch.Generator(device=device).manual_seed(0)
        _, sec_b = _rate(lambda b: group_mask_batch(b, align=align, generator=gen), [images], repeats)
        frac = group_mask_batch(images, align=align, generator=gen)[1].mean().item()
        rows.append((f"RandGroupMask align={align} (per image)", sec * 1e3, frac))
        rows.append((f"group_mask_batch align={align} (batch of {batch}, {device})", sec_b / batch * 1e3, frac))
    _, sec = _rate(coarse, list(images.cpu()), repeats)
    frac = float(np.mean([(coarse(x) == 0).float().mean().item() for x in images.cpu()]))
    rows.append(("MONAI RandCoarseDropout (per image)", sec * 1e3, frac))
    print(f"\n## Masking cost per {size}x{size} image\n")
    print("| transform | ms/image | mean corrupted fraction |")
    print("|---|---|---|")
    for name, ms, frac in rows:
        print(f"| {name} | {ms:.2f} | {frac:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=shared_data_root())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, threads {torch.get_num_threads()}")
    bench_loader(Path(args.data), args.repeats)
    bench_masks(args.device, args.repeats)


if __name__ == "__main__":
    main()
