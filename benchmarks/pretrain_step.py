"""Pretraining throughput: this project's GMML step against MONAI's two self-supervised recipes.

    python benchmarks/pretrain_step.py [--image-size 128] [--model-size small] [--batch-size 16] [--steps 5]

Each recipe runs in its own subprocess (so peak memory is its own): one full optimiser step
(masking + forward + loss + backward + AdamW) per iteration, same ViT backbone size and image size.

- gmml: GMMLViT + group_mask_batch (noise/replace, on the device) + MaskedL1Loss
- mae: MONAI MaskedAutoEncoderViT (random 75% token masking, 4-block decoder), MSE on masked patches
- vitautoenc: MONAI ViTAutoEnc + RandCoarseDropout (MONAI's self-supervised tutorial), L1 on the image
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

RECIPES = ("gmml", "mae", "vitautoenc")


def _step_fn(recipe: str, size: int, dims: dict, device: torch.device, batch: int):
    from monai.networks.nets import MaskedAutoEncoderViT, ViTAutoEnc
    from monai.transforms import RandCoarseDropout

    from spcxr_monai.engines import MaskedL1Loss
    from spcxr_monai.networks import create_gmml_vit
    from spcxr_monai.transforms import group_mask_batch

    images = torch.randn(batch, 1, size, size, device=device)
    if recipe == "gmml":
        net = create_gmml_vit(dims["name"], img_size=size).to(device)
        loss_fn, gen = MaskedL1Loss(), torch.Generator(device=device).manual_seed(0)

        def loss():
            corrupted, mask = group_mask_batch(images, corruptions=("noise", "replace"), generator=gen)
            return loss_fn(net(corrupted), torch.cat([images, mask], 1))

    elif recipe == "mae":
        net = MaskedAutoEncoderViT(
            1, size, 16, hidden_size=dims["hidden_size"], mlp_dim=dims["mlp_dim"], num_layers=12,
            num_heads=dims["num_heads"], spatial_dims=2, qkv_bias=True,
        ).to(device)

        def loss():
            pred, mask = net(images)  # (B, N, 256), mask (B, N) 1 = masked
            b, g = images.shape[0], size // 16
            target = images.reshape(b, 1, g, 16, g, 16).permute(0, 2, 4, 3, 5, 1).reshape(b, g * g, -1)
            return (((pred - target) ** 2).mean(-1) * mask).sum() / mask.sum()

    else:
        net = ViTAutoEnc(
            1, size, 16, hidden_size=dims["hidden_size"], mlp_dim=dims["mlp_dim"], num_layers=12,
            num_heads=dims["num_heads"], spatial_dims=2, qkv_bias=True,
        ).to(device)
        dropout = RandCoarseDropout(holes=6, spatial_size=size // 8, max_holes=10, dropout_holes=True, prob=1.0)

        def loss():
            corrupted = torch.stack([dropout(x) for x in images.cpu()]).to(device)
            return (net(corrupted)[0] - images).abs().mean()

    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        value = loss()
        value.backward()
        opt.step()
        return value

    return step


def run_one(recipe: str, size: int, model: str, batch: int, steps: int, device: str) -> dict:
    from spcxr_monai.networks import VIT_SIZES

    torch.manual_seed(0)
    dev = torch.device(device)
    step = _step_fn(recipe, size, {"name": model, **VIT_SIZES[model]}, dev, batch)
    step()  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {"recipe": recipe, "images_per_s": batch * steps / seconds, "peak_mib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--model-size", default="small")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", choices=RECIPES, help=argparse.SUPPRESS)  # one recipe in this process
    args = parser.parse_args()
    if args.only:
        print(json.dumps(run_one(args.only, args.image_size, args.model_size, args.batch_size, args.steps, args.device)))
        return
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(f"ViT-{args.model_size}/16, {args.image_size}x{args.image_size}, batch {args.batch_size}, "
          f"{args.steps} steps, {where}, torch {torch.__version__}\n")
    print("| recipe | images/s | peak memory (MiB) |")
    print("|---|---|---|")
    for recipe in RECIPES:
        out = subprocess.run(
            [sys.executable, __file__, "--only", recipe, "--image-size", str(args.image_size), "--model-size",
             args.model_size, "--batch-size", str(args.batch_size), "--steps", str(args.steps), "--device", args.device],
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        kind = "GPU allocated" if args.device.startswith("cuda") else "process RSS"
        print(f"| {r['recipe']} | {r['images_per_s']:.1f} | {r['peak_mib']:.0f} ({kind}) |")


if __name__ == "__main__":
    main()
