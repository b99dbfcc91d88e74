"""Cost of drawing and applying a batch's GMML group masks: tensor operations dispatched and milliseconds,
patch-aligned as in the pretraining bundle, before (one block per image per round, the path pixel-aligned
masks keep) and after (all blocks of the batch at once), next to the floor any corruption pays.

    python benchmarks/mask_cost.py [--threads 1] [--repeats 5] [--device cpu]

The floor is drawing the batch's N(0, 1) noise and applying one given mask (``torch.where``). Operations
are counted with torch's dispatch mode (every ATen call, views included). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from spcxr_monai.transforms import group_mask
from spcxr_monai.transforms.group_mask import GMML_CORRUPTIONS, group_mask_batch
from spcxr_monai.utils import OpCounter


@contextmanager
def _path(vectorised: bool) -> Iterator[None]:
    """The round-by-round draw (this module's path before the vectorised one) or the vectorised draw."""
    saved = getattr(group_mask, "VECTORISED_MAX_CELLS", 0)  # 0: a version without the vectorised draw
    group_mask.VECTORISED_MAX_CELLS = saved if vectorised else 0
    try:
        yield
    finally:
        group_mask.VECTORISED_MAX_CELLS = saved


def _measure(fn: Callable[[], object], repeats: int, device: torch.device) -> tuple[int, float]:
    """(operations dispatched by one call, best ms of ``repeats`` calls)."""
    fn()  # warm-up
    with OpCounter() as counter:
        fn()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return counter.count, best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--patch", type=int, default=16, help="mask alignment (the ViT patch size)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f"torch {torch.__version__}, {args.device}, {torch.get_num_threads()} thread(s), align {args.patch}, "
        f"corruptions {GMML_CORRUPTIONS}\n"
    )
    print(
        "| batch | size | before: ops | before: ms | after: ops | after: ms | floor: ops | floor: ms "
        "| after / floor (time) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for size in (128, 224):
        for batch in (32, 256):
            images = torch.randn(batch, 1, size, size, device=device)
            given = torch.rand(batch, 1, size, size, device=device) < 0.6
            gen = torch.Generator(device=device).manual_seed(0)
            rows = {}
            for name, vectorised in (("before", False), ("after", True)):
                with _path(vectorised):
                    rows[name] = _measure(
                        lambda: group_mask_batch(images, align=args.patch, generator=gen), args.repeats, device
                    )

            def floor() -> torch.Tensor:
                noise = torch.randn(images.shape, generator=gen, device=device)
                return torch.where(given, noise, images)

            rows["floor"] = _measure(floor, args.repeats, device)
            (bo, bt), (ao, at), (fo, ft) = rows["before"], rows["after"], rows["floor"]
            print(f"| {batch} | {size} | {bo} | {bt:.1f} | {ao} | {at:.1f} | {fo} | {ft:.1f} | {at / ft:.2f}x |")


if __name__ == "__main__":
    main()
