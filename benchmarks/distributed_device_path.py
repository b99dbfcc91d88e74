"""The device-fed pretraining path on 1 and 2 processes (torchrun), and what it would hold at scale.

    python benchmarks/distributed_device_path.py --dataset_dir ../shared/data/covid-radiography-pool \
        [--images 2048] [--batch_size 64] [--steps 20] [--image_size 128] [--out benchmarks/results/...md]

Part 1 (measured): the pretraining step of ``data_on_device.json`` (sharded ``UInt8ImageStore`` ->
``DeviceBatchLoader`` with ``RandAffineBatch`` -> ``GMMLPrepareBatch`` masks -> DDP ViT-Ti GMML -> AdamW,
bf16 autocast where the CPU has it) under ``torchrun --nproc_per_node=1`` and ``=2`` with one thread a process
(one process stands for one device), and one process with 2 threads for reference: images/s over all ranks
after 3 warm-up steps, store bytes, decode seconds and peak resident memory per rank.

Part 2 (computed from a measured rate): 1 M prepared images at 224 px on 1, 8 and 64 GPUs: store bytes per
rank, start-up decode time per rank (``spcxr prepare``'s 224 px PNGs decoded by the store's load chain on one
core here, times the rank's loader workers), the share of an 80 GB H100. Run the whole script on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist

from spcxr_monai.data import DeviceBatchLoader, UInt8ImageStore, find_images
from spcxr_monai.distributed import distributed_device, init_distributed
from spcxr_monai.engines import GMMLPrepareBatch, MaskedL1Loss
from spcxr_monai.networks import create_gmml_vit
from spcxr_monai.transforms import RandAffineBatch, cxr_preprocessing
from spcxr_monai.utils import autocast, resolve_amp_dtype

H100_BYTES = 80e9
WARMUP = 3


def worker(args: argparse.Namespace) -> None:
    """One rank (under torchrun): build the sharded store, train ``--steps`` timed steps, report to rank 0."""
    init_distributed()
    device, rank, world = distributed_device(), dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    items = [{"image": str(f)} for f in find_images(args.dataset_dir)[: args.images]]
    start = time.perf_counter()
    store = UInt8ImageStore(items, cxr_preprocessing(args.image_size), device=device, batch_size=128)
    decode_s = time.perf_counter() - start
    loader = DeviceBatchLoader(
        store,
        args.batch_size,
        shuffle=True,
        drop_last=True,
        augment=RandAffineBatch(prob=0.5, rotate_range=0.09, scale_range=0.1, translate_range=0.05 * args.image_size),
        seed=0,
    )
    network = create_gmml_vit("tiny", img_size=args.image_size, patch_size=16).to(device)
    ddp = torch.nn.parallel.DistributedDataParallel(
        network, device_ids=[device.index] if device.type == "cuda" else None
    )
    optimizer = torch.optim.AdamW(ddp.parameters(), lr=1e-4)
    masks, loss_fn = GMMLPrepareBatch(seed=rank), MaskedL1Loss()
    dtype = resolve_amp_dtype("auto", device)
    batches, done = iter(loader), 0
    for step in range(WARMUP + args.steps):
        if step == WARMUP:
            dist.barrier()
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        corrupted, target, _, _ = masks(batch, device)
        with autocast(device, dtype):
            loss = loss_fn(ddp(corrupted), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done += len(corrupted) if step >= WARMUP else 0
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    record = {
        "rank": rank,
        "images": len(store),
        "store_bytes": store.nbytes,
        "decode_s": decode_s,
        "seconds": seconds,
        "steps_per_epoch": len(loader),
        "trained": done,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    records: list = [None] * world
    dist.all_gather_object(records, record)
    if rank == 0:
        print("RESULT " + json.dumps(records), flush=True)
    dist.destroy_process_group()


def launch(args: argparse.Namespace, nproc: int, threads: int) -> list[dict]:
    """Run this script's worker under torchrun; the per-rank records."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", __file__]
    cmd += ["--worker", "--dataset_dir", str(args.dataset_dir), "--images", str(args.images)]
    cmd += ["--batch_size", str(args.batch_size), "--steps", str(args.steps), "--image_size", str(args.image_size)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"torchrun with {nproc} processes failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def decode_rate(source: Path, count: int, size: int) -> float:
    """Images/s one core decodes ``spcxr prepare``'s ``size``-px PNGs into the store (its load chain)."""
    with tempfile.TemporaryDirectory() as tmp:
        picked = Path(tmp) / "source"
        picked.mkdir()
        for f in find_images(source)[:count]:
            os.symlink(f, picked / f.name)
        prepared = Path(tmp) / "prepared"
        subprocess.run(
            ["spcxr", "prepare", str(picked), str(prepared), "--size", str(size), "--no-progress"],
            check=True,
            capture_output=True,
        )
        items = [{"image": str(f)} for f in sorted((prepared / "images").rglob("*.png"))]
        torch.set_num_threads(1)
        start = time.perf_counter()
        UInt8ImageStore(items, cxr_preprocessing(size), batch_size=64, shard=False)
        return len(items) / (time.perf_counter() - start)


def report(args: argparse.Namespace) -> str:
    runs = {"1 process, 1 thread": launch(args, 1, 1), "2 processes, 1 thread each": launch(args, 2, 1)}
    runs["1 process, 2 threads"] = launch(args, 1, 2)
    base = sum(r["trained"] for r in runs["1 process, 1 thread"]) / max(
        r["seconds"] for r in runs["1 process, 1 thread"]
    )
    one_image = args.image_size**2
    lines = [
        f"## Device-fed pretraining step under torchrun (this CPU; ViT-Ti/16 {args.image_size} px, batch "
        f"{args.batch_size} per rank, {args.steps} timed steps, {args.images} images of `{args.dataset_dir.name}`)",
        "",
        "| run | images/s (all ranks) | vs 1 process | images per rank | store bytes per rank | decode s per rank | peak RSS MB per rank |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, records in runs.items():
        rate = sum(r["trained"] for r in records) / max(r["seconds"] for r in records)
        per = lambda key, fmt: " / ".join(fmt.format(r[key]) for r in records)  # noqa: E731 - a table cell
        lines.append(
            f"| {name} | {rate:.1f} | {rate / base:.2f}x | {per('images', '{}')} | {per('store_bytes', '{:,}')} "
            f"| {per('decode_s', '{:.1f}')} | {per('peak_rss_mb', '{:.0f}')} |"
        )
    two = runs["2 processes, 1 thread each"]
    whole = runs["1 process, 1 thread"][0]["store_bytes"]
    halves = ", ".join(f"{r['store_bytes']:,}" for r in two)
    within = all(abs(r["store_bytes"] - whole / 2) <= one_image for r in two)
    steps = " / ".join(str(r["steps_per_epoch"]) for r in two)
    lines += [
        "",
        f"Store bytes per rank with 2 ranks: {halves} against one rank's {whole:,}: half of it "
        f"{'within' if within else 'NOT within'} one image ({one_image:,} bytes). Steps per epoch: {steps}.",
    ]
    rate = decode_rate(args.decode_source, args.decode_images, 224)
    lines += [
        "",
        f"## 1 M prepared images at 224 px, 1 byte a pixel (decode rate measured here: {rate:.0f} images/s on one core, "
        f"`spcxr prepare --size 224` PNGs of `{args.decode_source.name}`, {args.decode_images} images)",
        "",
        "| GPUs (ranks) | images per rank | store GB per rank | share of an 80 GB H100 | decode at start, 1 core | with 8 loader workers |",
        "|---|---|---|---|---|---|",
    ]
    for ranks in (1, 8, 64):
        per_rank = -(-1_000_000 // ranks)
        gb = per_rank * 224 * 224 / 1e9
        lines.append(
            f"| {ranks} | {per_rank:,} | {gb:.2f} | {gb * 1e9 / H100_BYTES:.1%} | {per_rank / rate / 60:.1f} min "
            f"| {per_rank / rate / 8 / 60:.1f} min |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_dir", type=Path, required=True)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--image_size", type=int, default=128)
    parser.add_argument("--decode_source", type=Path, default=None, help="images for the decode rate (dataset_dir)")
    parser.add_argument("--decode_images", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    args.decode_source = args.decode_source or args.dataset_dir
    text = report(args)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
