"""End-to-end pretraining throughput and memory of the bundle's two data paths on real images.

    python benchmarks/pretrain_data_path.py --dataset_dir ../shared/data/covid-qu-ex/train [--epochs 2]
        [--threads 1] [--batch_size 64] [--paths host device]
    python benchmarks/pretrain_data_path.py --dataset_dir PREPARED --image_counts 2000 10000 20000 --steps 10 \
        --epochs 1      # peak memory against the number of images

Runs the pretraining bundle (ViT-Ti/16, 128 px, from the released encoder, no probe) once per path in
a subprocess and reads its log: the set-up time (decoding and caching before the first step), the
trainer's time per epoch (its validation included) and images/s, and the peak resident memory of the
process. ``host`` is ``configs/train.json`` (float32 ``CacheDataset``, per-image ``RandAffined`` and
collation on the host, masks drawn in the step; ``cache_rate`` 1.0: every image cached); ``device`` merges
``configs/data_on_device.json`` (uint8 store on the training device, per-batch augmentation and masks there).
With ``--image_counts``, each run trains on the first N images of ``dataset_dir`` (hard links in a temporary
folder, the list repeated under other names where N exceeds it) and ``--steps`` caps the epoch's iterations,
for memory against size. Prints a Markdown table.
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
CONFIGS = {"host": ["configs/train.json"], "device": ["configs/train.json", "configs/data_on_device.json"]}
TIMED = re.compile(r"(\d\d:\d\d:\d\d),\d+ .*SupervisedTrainer - INFO - Engine run resuming")
EPOCH = re.compile(r"SupervisedTrainer - INFO - Epoch\[(\d+)\] Complete\. Time taken: (\d+):(\d+):([\d.]+)")
ITEMS = re.compile(r"Epoch: 1/\d+, Iter: \d+/(\d+)")


def images_folder(src: Path, count: int, dst: Path) -> Path:
    """``count`` images of ``src`` as hard links in ``dst`` (repeated under new names past the end of the list)."""
    from spcxr_monai.data import find_images

    files = find_images(src)
    dst.mkdir(parents=True)
    for i in range(count):
        source = files[i % len(files)]
        os.link(source, dst / f"{i // len(files)}_{source.name}")
    return dst


def run_path(path: str, args: argparse.Namespace, root: Path, dataset_dir: Path) -> dict:
    """One bundle run; its set-up seconds, seconds per epoch, images/s and peak RSS (MiB)."""
    code = (
        "import resource, runpy, sys; sys.argv = sys.argv[1:]; "
        'exec(\'try:\\n runpy.run_module("monai.bundle", run_name="__main__")\\nfinally:\\n '
        'print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\')'
    )
    cmd = [
        sys.executable,
        "-c",
        code,
        "monai.bundle",
        "run",
        "training",
        "--config_file",
        json.dumps(CONFIGS[path]),
        "--logging_file",
        "configs/logging.conf",
        "--bundle_root",
        str(root / path),
        "--dataset_dir",
        str(dataset_dir.resolve()),
        "--cache_rate",
        "1.0",
        "--epochs",
        str(args.epochs),
        "--batch_size",
        str(args.batch_size),
        "--num_threads",
        str(args.threads),
        "--image_size",
        "128",
        "--model_size",
        "tiny",
    ]
    if args.steps:
        cmd += ["--train#trainer#epoch_length", str(args.steps)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONWARNINGS": "ignore"}
    start = time.time()
    proc = subprocess.run(cmd, cwd=BUNDLE, capture_output=True, text=True, env=env)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"{path}: bundle run failed\n{log[-3000:]}")
    first = TIMED.search(log).group(1)
    h, m, s = map(int, first.split(":"))
    started = time.localtime(start)
    setup = (h * 3600 + m * 60 + s) - (started.tm_hour * 3600 + started.tm_min * 60 + started.tm_sec)
    epochs = [int(a) * 3600 + int(b) * 60 + float(c) for _, a, b, c in EPOCH.findall(log)]
    steps = args.steps or int(ITEMS.search(log).group(1))
    per_epoch = min(epochs)
    rss = int(re.search(r"PEAK_RSS_KB (\d+)", log).group(1)) / 1024
    return {"setup_s": setup, "epoch_s": per_epoch, "images_per_s": steps * args.batch_size / per_epoch, "rss_mib": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_dir", required=True)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--paths", nargs="+", default=["host", "device"], choices=sorted(CONFIGS))
    parser.add_argument("--image_counts", nargs="+", type=int, default=None, help="train on the first N images")
    parser.add_argument("--steps", type=int, default=None, help="iterations per epoch (default: the whole set)")
    args = parser.parse_args()
    print(
        f"{args.dataset_dir}: ViT-Ti/16 128 px, batch {args.batch_size}, {args.threads} thread(s), "
        f"best of {args.epochs} epochs (validation included){f', {args.steps} steps an epoch' if args.steps else ''}\n"
    )
    print("| images | data path | set-up (s) | s / epoch | training images/s | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(dir=os.environ.get("SPCXR_BENCH_TMP")) as tmp:
        for count in args.image_counts or [None]:
            folder = Path(args.dataset_dir)
            if count:
                folder = images_folder(folder, count, Path(tmp) / f"images_{count}")
            for path in args.paths:
                r = run_path(path, args, Path(tmp) / str(count), folder)
                print(
                    f"| {count or 'all'} | {path} | {r['setup_s']:.0f} | {r['epoch_s']:.1f} | "
                    f"{r['images_per_s']:.1f} | {r['rss_mib']:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
