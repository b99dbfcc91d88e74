"""Lung segmentation: UNETR on the GMML-pretrained ViT vs the same UNETR from scratch, same budget.

    python experiments/segmentation_pretrain_vs_scratch.py --pretrained runs/pretrain_tiny128/models/model.pt \
        [--data ../shared/data] [--seeds 0] [--epochs 8] [--out experiments/results/segmentation]

Each run trains the segmentation bundle (``bundles/spcxr_lung_segmentation``) on the lung masks of
``covid-qu-ex/train`` (80% of its patients; the last epoch's model is evaluated, no model
selection), then evaluates it on ``covid-qu-ex/val`` minus the images with a near-duplicate in the
training folder: mean Dice and HD95 (pixels of the resized image; MONAI metrics) per image, averaged.
Both initialisations get the same epochs, learning rate, augmentation and seeds. Writes ``runs.csv``
and ``summary.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np

from spcxr_monai.data import eval_datalist, shared_data_root, task_classes

from bundle_workflow import run_workflow

BUNDLE = "spcxr_lung_segmentation"


def _per_image(csv_path: Path) -> np.ndarray:
    """The per-image ``mean`` column of a MetricsSaver ``*_raw.csv``."""
    with open(csv_path) as f:
        return np.array([float(r["mean"]) for r in csv.DictReader(f)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained", required=True, help="GMML checkpoint (models/model.pt of the pretraining bundle)")
    parser.add_argument("--data", default=shared_data_root())
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--model-size", default="tiny")
    parser.add_argument("--feature-size", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "segmentation"))
    parser.add_argument("--work", default="runs/segmentation_pretrain_vs_scratch", help="checkpoints and logs")
    args = parser.parse_args()

    data = Path(args.data).resolve()
    train_dir = data / "covid-qu-ex" / "train"
    out, work = Path(args.out), Path(args.work).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    classes, _ = task_classes("3class")
    held_out = eval_datalist(str(data / "covid-qu-ex" / "val"), classes, dedup_against=str(train_dir))
    eval_items = [{"image": i["image"], "label": i["mask"]} for i in held_out]
    print(json.dumps({"covid_val_after_dedup": len(eval_items)}), flush=True)

    rows = []
    for seed in args.seeds:
        for init in ("gmml", "scratch"):
            root = work / f"s{seed}_{init}"
            common = {
                "bundle_root": str(root),
                "dataset_dir": str(train_dir),
                "image_size": args.image_size,
                "model_size": args.model_size,
                "feature_size": args.feature_size,
                "batch_size": args.batch_size,
                "seed": seed,
            }
            t0 = time.time()
            run_workflow(
                BUNDLE, ["train.json"], "training", **common,
                pretrained_checkpoint=args.pretrained if init == "gmml" else "",
                epochs=args.epochs, val_interval=args.epochs, learning_rate=args.learning_rate,
            )
            train_s = time.time() - t0
            run_workflow(
                BUNDLE, ["train.json", "evaluate.json"], "evaluating", **common,
                eval_checkpoint=str(root / "models" / "model_final.pt"), **{"validate#items": eval_items},
            )
            dice = _per_image(root / "eval" / "val_mean_dice_raw.csv")
            hd95 = _per_image(root / "eval" / "val_hd95_raw.csv")
            row = {
                "seed": seed, "init": init, "epochs": args.epochs, "train_seconds": round(train_s, 1),
                "n_eval": len(dice), "dice_mean": float(np.mean(dice)), "dice_median": float(np.median(dice)),
                "dice_p10": float(np.percentile(dice, 10)),
                # HD95 is inf/nan for an image whose prediction is empty: counted, left out of the mean
                "hd95_mean": float(np.mean(hd95[np.isfinite(hd95)])), "hd95_undefined": int((~np.isfinite(hd95)).sum()),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            with open(out / "runs.csv", "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
    write_summary(rows, out, time.time() - started, args, len(eval_items))


def write_summary(rows: list[dict], out: Path, elapsed: float, args: argparse.Namespace, n_eval: int) -> None:
    metrics = ["dice_mean", "dice_median", "dice_p10", "hd95_mean"]
    lines = [
        f"UNETR (ViT-{args.model_size}/16, feature size {args.feature_size}) at {args.image_size}x{args.image_size}, "
        f"{args.epochs} epochs, batch {args.batch_size}, lr {args.learning_rate}, seeds {args.seeds}; "
        f"{elapsed / 60:.1f} min on this machine. Evaluated on {n_eval} COVID-QU-Ex val images (after de-duplication "
        "against train); HD95 in pixels of the resized image.",
        "",
        "| init | mean Dice | median Dice | 10th pct Dice | mean HD95 (px) | train s |",
        "|---|---|---|---|---|---|",
    ]
    for init in ("gmml", "scratch"):
        sel = [r for r in rows if r["init"] == init]
        if sel:
            cells = " | ".join(f"{np.mean([r[m] for r in sel]):.3f} ± {np.std([r[m] for r in sel]):.3f}" for m in metrics)
            lines.append(f"| {init} | {cells} | {np.mean([r['train_seconds'] for r in sel]):.0f} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
