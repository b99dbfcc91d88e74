"""Does bf16 autocast change what GMML pretraining learns? The same short run in fp32 and in bf16.

    python benchmarks/bf16_vs_fp32_pretrain.py [--data ../shared/data] [--images 400] [--epochs 5]
        [--image-size 96] [--model-size tiny] [--threads N]

Runs the pretraining bundle twice on the first ``--images`` files of ``covid-qu-ex/train`` (sorted by
name; the bundle's 10% validation split of them), identical seeds, ``amp=none`` then ``amp=bf16``, and
prints each run's best validation masked L1, wall time, and the relative difference (target: within 2%).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "spcxr_gmml_pretrain"


def run(amp: str, data_dir: Path, work: Path, args: argparse.Namespace) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)} if args.threads else dict(os.environ)
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "training",
        "--config_file",
        "configs/train.json",
        "--bundle_root",
        str(work / amp),
        "--dataset_dir",
        str(data_dir),
        "--amp",
        amp,
        "--model_size",
        args.model_size,
        "--image_size",
        str(args.image_size),
        "--epochs",
        str(args.epochs),
        "--batch_size",
        "32",
        "--base_lr",
        "0.004",
        "--pretrained_checkpoint",
        "''",
        "--resume",
        "false",
        "--seed",
        "0",
    ]
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=BUNDLE, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode:
        raise RuntimeError(f"{amp} run failed:\n{out.stderr[-3000:]}")
    losses = [float(v) for v in re.findall(r"Metrics -- val_masked_l1: ([0-9.]+)", out.stderr + out.stdout)]
    return {"amp": amp, "best_val_masked_l1": min(losses), "curve": losses, "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("SPCXR_DATA", "../shared/data"))
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--model-size", default="tiny")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    source = Path(args.data).resolve() / "covid-qu-ex" / "train"
    files = sorted(source.glob("*/images/*.png"))[: args.images]
    if not files:
        raise SystemExit(f"{source}: no images found")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "images"
        data_dir.mkdir()
        for f in files:  # a flat folder of links: the bundle reads it as unlabelled images
            (data_dir / f"{f.parent.parent.name}_{f.name}").symlink_to(f)
        results = [run(amp, data_dir, Path(tmp), args) for amp in ("none", "bf16")]
    fp32, bf16 = results
    rel = (bf16["best_val_masked_l1"] - fp32["best_val_masked_l1"]) / fp32["best_val_masked_l1"]
    print(json.dumps(results, indent=1))
    print(
        f"\n{len(files)} images, ViT-{args.model_size}/16 at {args.image_size} px, {args.epochs} epochs: "
        f"best val masked L1 fp32 {fp32['best_val_masked_l1']:.4f} ({fp32['seconds']} s), "
        f"bf16 {bf16['best_val_masked_l1']:.4f} ({bf16['seconds']} s): {rel:+.2%} relative"
    )


if __name__ == "__main__":
    main()
