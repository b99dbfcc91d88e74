"""What UNETR's decoder width costs: the segmentation bundle's training step and inference per feature size.

    python benchmarks/unetr_feature_size.py [--feature-sizes 16 32] [--batch-size 16] [--steps 8] [--threads 1]
        [--out benchmarks/results/unetr_feature_size_cpu.md]

The lung segmentation bundle's network (``create_unetr("tiny", img_size=128)``, the ViT-Ti/16 of the released
encoder) at each ``feature_size``: parameters, model GFLOPs per image (``torch.utils.flop_counter``), the median
time of one training step (``DiceCELoss``, backward, AdamW; a batch of random images and masks) and of inference
on one image, in the precision the bundle's ``amp="auto"`` picks here. The sizes are timed in turns, step by step,
so that a machine shared with other jobs slows them alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from monai.losses import DiceCELoss
from torch.utils.flop_counter import FlopCounterMode

from spcxr_monai.networks import create_unetr
from spcxr_monai.utils import autocast, configure_threads, resolve_amp_dtype


def _flops_per_image(net: torch.nn.Module, size: int) -> float:
    """Model FLOPs of one forward pass on one ``size`` x ``size`` image (multiply-adds counted as two)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, 1, size, size))
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feature-sizes", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16, help="the bundle's default")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per size, after one warm-up")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="also write the table to this markdown file")
    args = parser.parse_args()

    threads = configure_threads(args.threads)
    torch.manual_seed(0)
    dtype = resolve_amp_dtype("auto", "cpu")
    images = torch.randn(args.batch_size, 1, args.image_size, args.image_size)
    masks = (torch.rand(args.batch_size, 1, args.image_size, args.image_size) > 0.6).float()
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    nets = {fs: create_unetr("tiny", img_size=args.image_size, feature_size=fs) for fs in args.feature_sizes}
    optimisers = {fs: torch.optim.AdamW(net.parameters(), lr=1e-4) for fs, net in nets.items()}
    train_s: dict[int, list[float]] = {fs: [] for fs in nets}
    infer_s: dict[int, list[float]] = {fs: [] for fs in nets}

    for step in range(args.steps + 1):  # step 0 warms up
        for fs, net in nets.items():
            net.train()
            start = time.perf_counter()
            optimisers[fs].zero_grad(set_to_none=True)
            with autocast("cpu", dtype):
                loss = loss_fn(net(images), masks)
            loss.backward()
            optimisers[fs].step()
            elapsed = time.perf_counter() - start
            net.eval()
            start = time.perf_counter()
            with torch.no_grad(), autocast("cpu", dtype):
                net(images[:1])
            if step:
                train_s[fs].append(elapsed)
                infer_s[fs].append(time.perf_counter() - start)

    base = args.feature_sizes[0]
    lines = [
        f"UNETR ViT-Ti/16 at {args.image_size} px, {threads} thread(s), {dtype or torch.float32} "
        f"(`amp=auto`), training batch {args.batch_size}, median of {args.steps} steps "
        f"(`python benchmarks/unetr_feature_size.py --feature-sizes {' '.join(map(str, args.feature_sizes))} "
        f"--batch-size {args.batch_size} --steps {args.steps} --threads {threads}`).",
        "",
        "| feature size | parameters (M) | GFLOPs / image | training step (s) | vs first | inference, 1 image (ms) | vs first |",
        "|---|---|---|---|---|---|---|",
    ]
    for fs, net in nets.items():
        step_s, one_s = statistics.median(train_s[fs]), statistics.median(infer_s[fs])
        lines.append(
            f"| {fs} | {sum(p.numel() for p in net.parameters()) / 1e6:.2f} | "
            f"{_flops_per_image(net, args.image_size) / 1e9:.2f} | {step_s:.3f} | "
            f"{step_s / statistics.median(train_s[base]):.2f}x | {one_s * 1e3:.1f} | "
            f"{one_s / statistics.median(infer_s[base]):.2f}x |"
        )
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
