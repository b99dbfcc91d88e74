"""Pretraining throughput: the GMML step against a bare ViT and MONAI's self-supervised recipes, per precision.

    python benchmarks/pretrain_step.py [--image-size 128] [--model-size tiny] [--batch-size 32] [--steps 5]
        [--recipes vit gmml] [--modes eager-fp32 fp32 bf16] [--threads N]

Each (recipe, mode) runs in its own subprocess (so peak memory is its own): one full optimiser step
per iteration, same ViT backbone and image size, random images.

Recipes:
- vit: the bare encoder (MONAI ``ViT`` forward + backward of the mean token + AdamW; no mask, no head):
  the ceiling any ViT pretext task on all tokens can reach
- gmml: ``GMMLViT`` + ``group_mask_batch`` (noise/replace, blocks on the 16-px patch grid as the GMML
  reference code, on the device) + ``MaskedL1Loss``: the bundle's step
- gmml-device: the bundle's step with ``configs/data_on_device.json``: each batch taken from uint8 images on
  the device, z-scored and augmented there (``DeviceBatchLoader`` + ``RandAffineBatch``), masks drawn there:
  the whole per-step data path included
- gmml-loader: the bundle's step with ``mask_in_loader``: masks drawn ahead on the CPU (as DataLoader
  workers that keep up would), the step copies them in: what the GMML step costs once masking overlaps it
- gmml-v010: the bundle's step as of v0.1.0 (pixel-aligned blocks, ``align=1``), measured in eager-fp32
  only: the baseline of the speed-up line
- mae: MONAI ``MaskedAutoEncoderViT`` (random 75% token masking, 4-block decoder), MSE on masked patches
- vitautoenc: MONAI ``ViTAutoEnc`` + ``RandCoarseDropout`` (MONAI's self-supervised tutorial), L1 on the image

Modes:
- eager-fp32: fp32, explicit softmax(QK^T)V attention: the bundles' default before fused attention
  and bf16 autocast (``amp="none"``)
- fp32: fp32 with fused attention (``scaled_dot_product_attention``)
- bf16: fused attention under ``torch.autocast(bfloat16)``: what ``amp="auto"`` picks on a GPU with bf16
  and on a CPU with AVX512-BF16 / AMX
- bf16-compiled: bf16 with the network's forward under ``torch.compile`` (inductor, default mode); not in
  the default list (compiling takes a while)

Model FLOPs are counted with ``torch.utils.flop_counter`` (forward x 3 for a training step); give
``--peak-tflops`` (e.g. 989 for an H100 SXM in dense bf16) to print model FLOPs utilisation.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import resource
import subprocess
import sys
import time

import torch

RECIPES = ("vit", "gmml", "gmml-device", "gmml-loader", "gmml-v010", "mae", "vitautoenc")
MODES = ("eager-fp32", "fp32", "bf16", "bf16-compiled")


def _build(recipe: str, size: int, model: str, device: torch.device, batch: int, fused: bool):
    """The network and a loss closure of one recipe (images drawn once, fixed)."""
    from monai.networks.nets import MaskedAutoEncoderViT, ViTAutoEnc
    from monai.transforms import RandCoarseDropout

    from spcxr_monai.engines import MaskedL1Loss
    from spcxr_monai.networks import VIT_SIZES, create_gmml_vit, set_fused_attention
    from spcxr_monai.networks.encoder import ViTEncoderModel
    from spcxr_monai.transforms import group_mask_batch

    dims = VIT_SIZES[model]
    images = torch.randn(batch, 1, size, size, device=device)
    monai_dims = {
        "hidden_size": dims["hidden_size"],
        "mlp_dim": dims["mlp_dim"],
        "num_layers": dims["num_layers"],
        "num_heads": dims["num_heads"],
        "spatial_dims": 2,
        "qkv_bias": True,
    }
    if recipe == "vit":
        net = ViTEncoderModel(img_size=size, **dims)

        def loss():
            return net(images).float().mean()

    elif recipe == "gmml-loader":
        net = create_gmml_vit(model, img_size=size)
        loss_fn, gen = MaskedL1Loss(), torch.Generator().manual_seed(0)
        # Masks drawn ahead on the CPU, as DataLoader workers that keep up would (``mask_in_loader``):
        # the step only copies them in. A few batches, cycled.
        cpu_images, ready = images.cpu(), []
        for _ in range(4):
            drawn = group_mask_batch(cpu_images, corruptions=("noise", "replace"), align=16, generator=gen)
            ready.append(tuple(t.pin_memory() if device.type == "cuda" else t for t in drawn))
        turn = itertools.count()

        def loss():
            corrupted, mask = (t.to(device, non_blocking=True) for t in ready[next(turn) % len(ready)])
            return loss_fn(net(corrupted), torch.cat([images, mask], 1))

    elif recipe == "gmml-device":
        from spcxr_monai.data import DeviceBatchLoader, UInt8ImageStore
        from spcxr_monai.transforms import RandAffineBatch

        net = create_gmml_vit(model, img_size=size)
        loss_fn, gen = MaskedL1Loss(), torch.Generator(device=device).manual_seed(0)
        # the bundle's data_on_device path: uint8 images on the device, each batch sliced, z-scored and
        # augmented there (one resampling call), masks drawn there
        pool = torch.randint(0, 256, (4 * batch, 1, size, size), dtype=torch.uint8, device=device)
        loader = DeviceBatchLoader(
            UInt8ImageStore.from_tensor(pool),
            batch,
            shuffle=True,
            drop_last=True,
            augment=RandAffineBatch(0.5, 0.09, 0.1, 0.05 * size),
            file_key=None,
        )
        batches = itertools.chain.from_iterable(itertools.repeat(loader))

        def loss():
            clean = next(batches)["image"]
            corrupted, mask = group_mask_batch(clean, corruptions=("noise", "replace"), align=16, generator=gen)
            return loss_fn(net(corrupted), torch.cat([clean, mask], 1))

    elif recipe.startswith("gmml"):
        net = create_gmml_vit(model, img_size=size)
        loss_fn, gen = MaskedL1Loss(), torch.Generator(device=device).manual_seed(0)
        align = 1 if recipe == "gmml-v010" else 16

        def loss():
            corrupted, mask = group_mask_batch(images, corruptions=("noise", "replace"), align=align, generator=gen)
            return loss_fn(net(corrupted), torch.cat([images, mask], 1))

    elif recipe == "mae":
        net = MaskedAutoEncoderViT(1, size, 16, **monai_dims)

        def loss():
            pred, mask = net(images)  # (B, N, 256), mask (B, N) 1 = masked
            b, g = images.shape[0], size // 16
            target = images.reshape(b, 1, g, 16, g, 16).permute(0, 2, 4, 3, 5, 1).reshape(b, g * g, -1)
            return (((pred.float() - target) ** 2).mean(-1) * mask).sum() / mask.sum()

    else:
        net = ViTAutoEnc(1, size, 16, **monai_dims)
        dropout = RandCoarseDropout(holes=6, spatial_size=size // 8, max_holes=10, dropout_holes=True, prob=1.0)

        def loss():
            corrupted = torch.stack([dropout(x) for x in images.cpu()]).to(device)
            return (net(corrupted)[0].float() - images).abs().mean()

    set_fused_attention(net, fused)
    return net.to(device), loss, images


def _forward_flops(net: torch.nn.Module, images: torch.Tensor, recipe: str) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(images)
    return counter.get_total_flops()


def run_one(recipe: str, mode: str, size: int, model: str, batch: int, steps: int, device: str) -> dict:
    torch.manual_seed(0)
    dev = torch.device(device)
    net, loss, images = _build(recipe, size, model, dev, batch, fused=mode != "eager-fp32")
    flops = 3 * _forward_flops(net, images, recipe)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    if mode == "bf16-compiled":
        net.forward = torch.compile(net.forward)
    bf16 = mode.startswith("bf16")
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast:
            value = loss()
        value.backward()
        opt.step()

    step()  # warm-up (and compilation)
    step()
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
    return {
        "recipe": recipe,
        "mode": mode,
        "images_per_s": batch * steps / seconds,
        "peak_mib": peak,
        "tflops": flops * steps / seconds / 1e12,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--model-size", default="tiny", choices=("tiny", "small", "base"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--recipes", nargs="+", default=["vit", "gmml"], choices=RECIPES)
    parser.add_argument("--modes", nargs="+", default=["eager-fp32", "fp32", "bf16"], choices=MODES)
    parser.add_argument("--threads", type=int, default=None, help="torch threads per process (default: torch's)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak, for model FLOPs utilisation")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", nargs=2, metavar=("RECIPE", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.only:
        recipe, mode = args.only
        print(
            json.dumps(
                run_one(recipe, mode, args.image_size, args.model_size, args.batch_size, args.steps, args.device)
            )
        )
        return
    where = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"ViT-{args.model_size}/16, {args.image_size}x{args.image_size}, batch {args.batch_size}, "
        f"{args.steps} steps, {where}, torch {torch.__version__}\n"
    )
    results: dict[tuple[str, str], dict] = {}
    runs = [(r, m) for r in args.recipes for m in args.modes if r != "gmml-v010"]
    if "gmml" in args.recipes:
        runs.append(("gmml-v010", "eager-fp32"))
    for recipe, mode in runs:
        cmd = [
            sys.executable,
            __file__,
            "--only",
            recipe,
            mode,
            "--image-size",
            str(args.image_size),
            "--model-size",
            args.model_size,
            "--batch-size",
            str(args.batch_size),
            "--steps",
            str(args.steps),
            "--device",
            args.device,
        ]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:  # one failing row (out of memory, say) must not lose the others
            print(f"{recipe} {mode}: failed\n" + "\n".join(done.stderr.strip().splitlines()[-6:]), file=sys.stderr)
            continue
        results[recipe, mode] = json.loads(done.stdout.strip().splitlines()[-1])
    kind = "GPU allocated" if args.device.startswith("cuda") else "process RSS"
    mfu = " | MFU" if args.peak_tflops else ""
    print(f"| recipe | mode | images/s | model TFLOP/s{mfu} | peak memory (MiB, {kind}) |")
    print("|---|---|---|---|---|" + ("---|" if mfu else ""))
    for (recipe, mode), r in results.items():
        util = f" | {r['tflops'] / args.peak_tflops:.1%}" if args.peak_tflops else ""
        print(f"| {recipe} | {mode} | {r['images_per_s']:.1f} | {r['tflops']:.3f}{util} | {r['peak_mib']:.0f} |")
    print()
    for mode in args.modes:
        names = {
            "gmml": "GMML step",
            "gmml-loader": "GMML step, masks from the loader",
            "gmml-device": "GMML step, data on the device (loader included)",
        }
        for gmml, name in names.items():
            if ("vit", mode) in results and (gmml, mode) in results:
                ratio = results[gmml, mode]["images_per_s"] / results["vit", mode]["images_per_s"]
                print(f"{name} / bare ViT, {mode}: {ratio:.2f}x")
    if ("gmml-v010", "eager-fp32") in results and ("gmml", "bf16") in results:
        ratio = results["gmml", "bf16"]["images_per_s"] / results["gmml-v010", "eager-fp32"]["images_per_s"]
        print(
            f"GMML step, bundle default now (bf16, fused attention, align 16) vs v0.1.0 (eager fp32, "
            f"align 1): {ratio:.2f}x"
        )


if __name__ == "__main__":
    main()
