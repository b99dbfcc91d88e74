"""Lung segmentation: UNETR on the GMML-pretrained ViT vs the same UNETR from scratch, at 1/10/100% of the masks.

    python experiments/segmentation_pretrain_vs_scratch.py [--pretrained released] [--data ../shared/data] \
        [--fractions 0.01 0.1 1.0] [--seeds 0 1 2] [--out experiments/results/segmentation]

Each run trains the segmentation bundle (``bundles/spcxr_lung_segmentation``) on ``mask_fraction`` of
the lung masks of ``covid-qu-ex/train``'s training patients (80%, stratified by class); the other 20%
is the bundle's validation split, which picks the model kept (best mean Dice, ``--val-evals``
validations per run). That model is evaluated on ``covid-qu-ex/val`` minus the images with a
near-duplicate in the training folder: mean Dice and HD95 per image, averaged (MONAI metrics), on the
model's grid (pixels of the resized image) and at the masks' own size (the bundle's evaluation: probabilities
resized smoothly, argmax and cleanup there, as inference does; HD95 in mm where the files give a spacing,
pixels otherwise: COVID-QU-Ex's PNGs are 256 px and give none). Both initialisations get the same epochs, learning rate, layer-wise
decay, augmentation and seeds; small fractions get at least ``--min-steps`` optimiser steps. ``--inits
unet`` adds what a user would pick instead: MONAI's ``UNet`` (residual units, as MONAI's segmentation
tutorials) from scratch, with the same data, budget and learning rate (no layer decay: no ViT). Writes
``runs.csv``, ``summary.md`` and ``summary.png``. ``--summarise RUNS_CSV ...`` trains nothing: it merges the
``runs.csv`` of several invocations into ``--out``'s summary.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np
from bundle_workflow import run_workflow
from sweep import SweepRun, plot_against_fraction, read_runs, sweep, write_runs

from spcxr_monai.data import eval_datalist, make_datalist, shared_data_root, task_classes
from spcxr_monai.pretrained import resolve_checkpoint

BUNDLE = "spcxr_lung_segmentation"
INITS = ("gmml", "scratch", "unet")
TEXT_COLUMNS = ("init",)
# at the masks' own size (the bundle's evaluate.json); absent from the runs made before it
NATIVE = ["native_dice_mean", "native_hd95_mean"]
# MONAI's residual UNet as its segmentation tutorials build it: 0.38 GFLOPs per 128 px image (UNETR ViT-Ti: 2.2)
UNET_DEF = {
    "_target_": "monai.networks.nets.UNet",
    "spatial_dims": 2,
    "in_channels": 1,
    "out_channels": 2,
    "channels": [16, 32, 64, 128, 256],
    "strides": [2, 2, 2, 2],
    "num_res_units": 2,
}


def _per_image(csv_path: Path) -> np.ndarray:
    """The per-image ``mean`` column of a MetricsSaver ``*_raw.csv``."""
    with open(csv_path) as f:
        return np.array([float(r["mean"]) for r in csv.DictReader(f)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pretrained",
        default="released",
        help="encoder of the gmml rows: a released name or 'released', or a GMML checkpoint; the "
        "default, the first release, is the one the committed gmml rows used",
    )
    parser.add_argument("--data", default=shared_data_root())
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    parser.add_argument("--inits", nargs="+", default=["gmml", "scratch"], choices=INITS)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--model-size", default="tiny")
    parser.add_argument(
        "--feature-size",
        type=int,
        default=16,
        help="UNETR's decoder width: 16 in every row whose command does not pass 32 (the bundle's default since its 0.2.0)",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--layer-decay", type=float, default=0.75)
    parser.add_argument("--epochs", type=int, default=8, help="epochs at 100%% of the masks")
    parser.add_argument("--min-steps", type=int, default=400, help="at least this many optimiser steps per run")
    parser.add_argument("--val-evals", type=int, default=4, help="validations per run (model selection)")
    parser.add_argument(
        "--clean-masks",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the bundle's lung_mask_cleanup on the predictions (validation and evaluation); the "
        "rows committed before it came were --no-clean-masks",
    )
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "segmentation"))
    parser.add_argument("--work", default="runs/segmentation_pretrain_vs_scratch", help="checkpoints and logs")
    parser.add_argument("--summarise", nargs="+", metavar="RUNS_CSV", help="only merge these runs.csv into --out")
    args = parser.parse_args()
    if args.summarise:
        summarise_runs(args)
    else:
        run_study(args)


def _note(args: argparse.Namespace) -> str:
    return (
        f"UNETR (ViT-{args.model_size}/16, feature size {args.feature_size}) at {args.image_size}x"
        f"{args.image_size}, batch {args.batch_size}, lr {args.learning_rate}, layer decay {args.layer_decay}, "
        f"gmml encoder {args.pretrained}"
    )


def summarise_runs(args: argparse.Namespace) -> None:
    """``--summarise RUNS_CSV ...``: no training; those files' rows become ``--out``'s runs.csv and summary."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = read_runs([Path(p) for p in args.summarise], TEXT_COLUMNS)
    write_runs(rows, out)
    write_summary(rows, out, f"{_note(args)}; runs merged from {', '.join(args.summarise)}.")


def run_study(args: argparse.Namespace) -> None:
    """Train and evaluate every (fraction, seed, init); ``runs.csv`` after each run, the summary at the end."""
    out, work = Path(args.out), Path(args.work).resolve()
    out.mkdir(parents=True, exist_ok=True)
    pretrained = resolve_checkpoint(args.pretrained) if "gmml" in args.inits else ""
    data = Path(args.data).resolve()
    train_dir = data / "covid-qu-ex" / "train"
    started = time.time()
    classes, _ = task_classes("3class")
    held_out = eval_datalist(str(data / "covid-qu-ex" / "val"), classes, dedup_against=str(train_dir))
    eval_items = [{"image": i["image"], "label": i["mask"]} for i in held_out]
    full_train = make_datalist(train_dir, None, val_fraction=0.2, seed=0)["training"]
    print(json.dumps({"covid_val_after_dedup": len(eval_items)}), flush=True)
    rows = []
    runs = sweep(
        full_train, args.fractions, args.seeds, args.inits, args.batch_size, args.epochs, args.min_steps, args.val_evals
    )
    for run in runs:
        rows.append(run_one(run, pretrained if run.arm == "gmml" else "", args, train_dir, work, eval_items))
        print(json.dumps(rows[-1]), flush=True)
        write_runs(rows, out)
    write_summary(
        rows,
        out,
        f"{_note(args)}, seeds {args.seeds}, predicted masks "
        f"{'cleaned (lung_mask_cleanup)' if args.clean_masks else 'raw'}; {(time.time() - started) / 60:.1f} min on "
        f"this machine. Evaluated on {len(eval_items)} COVID-QU-Ex val images (after de-duplication against "
        "train); HD95 in pixels of the resized image.",
    )


def run_one(
    run: SweepRun, encoder: str, args: argparse.Namespace, train_dir: Path, work: Path, eval_items: list[dict]
) -> dict:
    """Train one initialisation on one subset of the masks, keep the best internal-validation model, evaluate
    it on the held-out images; its ``runs.csv`` row."""
    root = work / f"f{run.fraction:g}_s{run.seed}_{run.arm}"
    common = {
        "bundle_root": str(root),
        "dataset_dir": str(train_dir),
        "image_size": args.image_size,
        "model_size": args.model_size,
        "feature_size": args.feature_size,
        "batch_size": args.batch_size,
        "seed": run.seed,
        "clean_masks": args.clean_masks,
    }
    if run.arm == "unet":
        common["network_def"] = UNET_DEF
    t0 = time.time()
    wf = run_workflow(
        BUNDLE,
        ["train.json"],
        "training",
        **common,
        resume=False,
        pretrained_checkpoint=encoder,
        mask_fraction=run.fraction,
        epochs=run.epochs,
        val_interval=run.val_interval,
        learning_rate=args.learning_rate,
        layer_decay=args.layer_decay,
        **{"train#checkpoint_saver#save_interval": run.epochs},
    )
    evaluator = wf.parser.get_parsed_content("validate#evaluator")
    train_s = time.time() - t0
    run_workflow(
        BUNDLE,
        ["train.json", "evaluate.json"],
        "evaluating",
        **common,
        eval_checkpoint=str(root / "models" / "model.pt"),
        **{"validate#items": eval_items},
    )
    dice = _per_image(root / "eval" / "val_mean_dice_raw.csv")
    hd95 = _per_image(root / "eval" / "val_hd95_raw.csv")
    native_dice = _per_image(root / "eval" / "native_mean_dice_raw.csv")
    native_hd95 = _per_image(root / "eval" / "native_hd95_raw.csv")
    return {
        "fraction": run.fraction,
        "seed": run.seed,
        "init": run.arm,
        "n_train": run.n_train,
        "epochs": run.epochs,
        "train_seconds": round(train_s, 1),
        "internal_val_dice": round(float(evaluator.state.best_metric), 4),
        "best_epoch": int(evaluator.state.best_metric_epoch),
        "n_eval": len(dice),
        "dice_mean": float(np.mean(dice)),
        "dice_median": float(np.median(dice)),
        "dice_p10": float(np.percentile(dice, 10)),
        # HD95 is inf/nan for an image whose prediction is empty: counted, left out of the mean
        "hd95_mean": float(np.mean(hd95[np.isfinite(hd95)])),
        "hd95_undefined": int((~np.isfinite(hd95)).sum()),
        "native_dice_mean": float(np.mean(native_dice)),
        "native_hd95_mean": float(np.mean(native_hd95[np.isfinite(native_hd95)])),
    }


def _mean_std(values: list[float]) -> str:
    """``mean ± std``, or ``-`` for runs made before a metric existed (an older runs.csv)."""
    values = [v for v in values if np.isfinite(v)]
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if values else "-"


def write_summary(rows: list[dict], out: Path, note: str) -> None:
    """``summary.md``: mean ± std over seeds per masks fraction and initialisation."""
    metrics = ["internal_val_dice", "dice_mean", "dice_median", "dice_p10", "hd95_mean", *NATIVE]
    if any(r["init"] == "unet" for r in rows):
        note += (
            f" unet: MONAI's residual UNet (channels {UNET_DEF['channels']}, {UNET_DEF['num_res_units']} residual"
            " units) from scratch, same data, budget and lr."
        )
    lines = [
        note,
        "",
        "| masks | init | seeds | n train | epochs | internal val Dice (selection) | mean Dice | median Dice "
        "| 10th pct Dice | mean HD95 (px) | native mean Dice | native mean HD95 (px) | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    means: dict = {}
    for fraction in sorted({r["fraction"] for r in rows}):
        for init in INITS:
            sel = [r for r in rows if r["fraction"] == fraction and r["init"] == init]
            if not sel:
                continue
            means[(fraction, init)] = {m: np.mean([r.get(m, np.nan) for r in sel]) for m in metrics}
            cells = " | ".join(_mean_std([r.get(m, np.nan) for r in sel]) for m in metrics)
            lines.append(
                f"| {fraction:.0%} | {init} | {len(sel)} | {int(sel[0]['n_train'])} | {int(sel[0]['epochs'])} "
                f"| {cells} | {np.mean([r['train_seconds'] for r in sel]):.0f} |"
            )
    diffs = [
        f"- {f:.0%} of the masks: mean Dice {means[(f, 'gmml')]['dice_mean'] - means[(f, 'scratch')]['dice_mean']:+.3f}"
        for f in sorted({k[0] for k in means})
        if (f, "gmml") in means and (f, "scratch") in means
    ]
    if diffs:
        lines += ["", "Difference gmml - scratch (mean over seeds):", "", *diffs]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot_against_fraction(
        rows,
        "init",
        ("dice_mean", "hd95_mean"),
        ("COVID-QU-Ex val mean Dice", "mean HD95 (px)"),
        "% of training masks",
        out / "summary.png",
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
