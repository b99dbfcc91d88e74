"""Where a pretraining step's time goes: ``torch.profiler`` over a few steps of a ``pretrain_step.py`` recipe.

    python benchmarks/profile_step.py [--recipes vit gmml] [--model-size small] [--image-size 224]
        [--batch-size 128] [--steps 5] [--device cuda]

Prints, per recipe, the total CPU and device time of ``--steps`` steps (bf16 autocast, fused attention,
after 3 warm-up steps) and the operators that took most device time. A step whose CPU time is far above
its device time is launch-bound: its kernels are too small or too many.
"""

from __future__ import annotations

import argparse

import torch
from pretrain_step import _build
from torch.profiler import ProfilerActivity, profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=["vit", "gmml"])
    parser.add_argument("--model-size", default="small", choices=("tiny", "small", "base"))
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rows", type=int, default=18)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    for recipe in args.recipes:
        torch.manual_seed(0)
        net, loss, _ = _build(recipe, args.image_size, args.model_size, device, args.batch_size, fused=True)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16):
                value = loss()
            value.backward()
            opt.step()

        for _ in range(3):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        with profile(activities=activities) as prof:
            for _ in range(args.steps):
                step()
            if device.type == "cuda":
                torch.cuda.synchronize()
        sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
        print(f"{recipe}, {args.steps} steps")
        print(prof.key_averages().table(sort_by=sort, row_limit=args.rows, max_name_column_width=60))


if __name__ == "__main__":
    main()
