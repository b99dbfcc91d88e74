"""End-to-end pretraining throughput and memory of the bundle's two data paths on real images.

    python benchmarks/pretrain_data_path.py --dataset_dir ../shared/data/covid-qu-ex/train [--epochs 2]
        [--threads 1] [--batch_size 64] [--paths host device]

Runs the pretraining bundle (ViT-Ti/16, 128 px, from the released encoder, no probe) once per path in
a subprocess and reads its log: the set-up time (decoding and caching before the first step), the
trainer's time per epoch (its validation included) and images/s, and the peak resident memory of the
process. ``host`` is ``configs/train.json`` (float32 ``CacheDataset``, per-image ``RandAffined`` and
collation on the host, masks drawn in the step); ``device`` merges ``configs/data_on_device.json`` (uint8
store on the training device, per-batch augmentation and masks there). Prints a Markdown table.
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


def run_path(path: str, args: argparse.Namespace, root: Path) -> dict:
    """One bundle run; its set-up seconds, seconds per epoch, images/s and peak RSS (MiB)."""
    code = (
        "import resource, runpy, sys; sys.argv = sys.argv[1:]; "
        "exec('try:\\n runpy.run_module(\"monai.bundle\", run_name=\"__main__\")\\nfinally:\\n "
        "print(\"PEAK_RSS_KB\", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)')"
    )
    cmd = [sys.executable, "-c", code, "monai.bundle", "run", "training", "--config_file", json.dumps(CONFIGS[path]),
           "--logging_file", "configs/logging.conf", "--bundle_root", str(root / path),
           "--dataset_dir", str(Path(args.dataset_dir).resolve()), "--epochs", str(args.epochs), "--batch_size", str(args.batch_size),
           "--num_threads", str(args.threads), "--image_size", "128", "--model_size", "tiny"]
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
    steps = int(ITEMS.search(log).group(1))
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
    args = parser.parse_args()
    print(f"{args.dataset_dir}: ViT-Ti/16 128 px, batch {args.batch_size}, {args.threads} thread(s), "
          f"best of {args.epochs} epochs (validation included)\n")
    print("| data path | set-up (s) | s / epoch | training images/s | peak RSS (MiB) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.paths:
            r = run_path(path, args, Path(tmp))
            print(f"| {path} | {r['setup_s']:.0f} | {r['epoch_s']:.1f} | {r['images_per_s']:.1f} | {r['rss_mib']:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
