"""SPCXR's claim in miniature: GMML-pretrained ViT vs the same ViT from scratch, 1/10/100% of the labels.

    python experiments/pretrain_vs_scratch.py --pretrained runs/pretrain_tiny128/models/model.pt \
        [--data ../shared/data] [--seeds 0 1 2] [--fractions 0.01 0.1 1.0] [--out experiments/results]

Each run fine-tunes the classification bundle (``bundles/spcxr_cxr_classification``, 3 classes) on
``covid-qu-ex/train`` (80% of its patients; the other 20% is the bundle's validation split, unused
here: the last epoch's model is evaluated, no model selection), then evaluates it on

- ``covid-qu-ex/val`` (3 classes), minus images with a near-duplicate in ``covid-qu-ex/train``;
- the pediatric set (another hospital, never trained on) as normal vs pneumonia: predicted
  pneumonia = argmax is not "normal", score = 1 - p(normal); minus near-duplicates of ``covid-qu-ex/train``.

Both initialisations get the same epochs, learning rate, augmentation and seeds. Writes
``runs.csv`` (one row per run), ``summary.md`` (mean ± std over seeds) and ``summary.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from spcxr_monai.data import eval_datalist, make_datalist, shared_data_root, subsample_stratified, task_classes
from spcxr_monai.metrics import classification_report

from bundle_workflow import run_workflow

CLASSES, CLASS_MAP = task_classes("3class")
NORMAL = CLASSES.index("normal")


def _predictions(csv_path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    probs = np.array([[float(r[f"p_{c}"]) for c in CLASSES] for r in rows])
    return probs, np.array([int(r["label"]) for r in rows])


def _drift_report(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Normal (0) vs pneumonia (1) from a 3-class model: any non-normal argmax counts as pneumonia;
    the AUC scores 1 - p(normal)."""
    import torch
    from monai.metrics import compute_roc_auc

    truth = (labels != NORMAL).astype(int)
    predicted = (probs.argmax(1) != NORMAL).astype(int)
    recalls = [float(np.mean(predicted[truth == c] == c)) for c in (0, 1) if (truth == c).any()]
    auc = compute_roc_auc(torch.as_tensor(1 - probs[:, NORMAL]), torch.as_tensor(truth))
    return {
        "n": int(len(truth)),
        "accuracy": float(np.mean(predicted == truth)),
        "balanced_accuracy": float(np.mean(recalls)),
        "macro_auc": float(auc),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained", required=True, help="GMML checkpoint (models/model.pt of the pretraining bundle)")
    parser.add_argument("--data", default=shared_data_root())
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--model-size", default="tiny")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--epochs", type=int, default=5, help="epochs at 100%% labels")
    parser.add_argument("--min-steps", type=int, default=120, help="at least this many optimiser steps per run")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--work", default="runs/pretrain_vs_scratch", help="checkpoints and logs of each run")
    args = parser.parse_args()

    data = Path(args.data).resolve()
    train_dir = data / "covid-qu-ex" / "train"
    out, work = Path(args.out), Path(args.work).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    eval_sets = {
        "covid_val": eval_datalist(str(data / "covid-qu-ex" / "val"), CLASSES, CLASS_MAP, dedup_against=str(train_dir)),
        "pediatric": eval_datalist(str(data / "pediatric" / "train"), CLASSES, CLASS_MAP, dedup_against=str(train_dir)),
    }
    full_train = make_datalist(train_dir, None, val_fraction=0.2, seed=0, classes=CLASSES)["training"]
    print(json.dumps({k: len(v) for k, v in eval_sets.items()}), flush=True)

    rows = []
    for fraction in args.fractions:
        for seed in args.seeds:
            n_train = len(subsample_stratified(full_train, fraction, seed))
            steps_per_epoch = math.ceil(n_train / args.batch_size)
            epochs = max(args.epochs, math.ceil(args.min_steps / steps_per_epoch))
            for init in ("gmml", "scratch"):
                root = work / f"f{fraction:g}_s{seed}_{init}"
                common = {
                    "bundle_root": str(root),
                    "dataset_dir": str(train_dir),
                    "image_size": args.image_size,
                    "model_size": args.model_size,
                    "batch_size": args.batch_size,
                    "seed": seed,
                }
                t0 = time.time()
                run_workflow(
                    "spcxr_cxr_classification", ["train.json"], "training", **common,
                    pretrained_checkpoint=args.pretrained if init == "gmml" else "",
                    label_fraction=fraction, epochs=epochs, val_interval=epochs, learning_rate=args.learning_rate,
                    **{"train#checkpoint_saver#save_interval": epochs},
                )
                train_s = time.time() - t0
                row = {"fraction": fraction, "seed": seed, "init": init, "n_train": n_train, "epochs": epochs,
                       "train_seconds": round(train_s, 1)}
                for name, items in eval_sets.items():
                    run_workflow(
                        "spcxr_cxr_classification", ["train.json", "evaluate.json"], "evaluating", **common,
                        eval_checkpoint=str(root / "models" / "model_final.pt"),
                        **{"validate#items": items, "validate#report_dir": str(root / f"eval_{name}")},
                    )
                    probs, labels = _predictions(root / f"eval_{name}" / "predictions.csv")
                    report = (
                        _drift_report(probs, labels) if name == "pediatric" else classification_report(probs, labels, CLASSES)
                    )
                    row.update({f"{name}_acc": report["accuracy"], f"{name}_bacc": report["balanced_accuracy"],
                                f"{name}_auc": report["macro_auc"], f"{name}_n": report["n"]})
                rows.append(row)
                print(json.dumps(row), flush=True)
                with open(out / "runs.csv", "w", newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                    writer.writeheader()
                    writer.writerows(rows)
    elapsed = time.time() - started
    write_summary(rows, out, elapsed, args, {k: len(v) for k, v in eval_sets.items()})


def write_summary(rows: list[dict], out: Path, elapsed: float, args: argparse.Namespace, n_eval: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ["covid_val_acc", "covid_val_auc", "pediatric_acc", "pediatric_auc"]
    lines = [
        f"ViT-{args.model_size}/16 at {args.image_size}x{args.image_size}, batch {args.batch_size}, lr {args.learning_rate}, "
        f"seeds {args.seeds}; {elapsed / 60:.1f} min on this machine. Evaluation sets after de-duplication: {n_eval}.",
        "",
        "| labels | init | n train | epochs | covid-qu-ex val acc | val macro AUC | pediatric acc | pediatric AUC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    summary: dict = {}
    for fraction in args.fractions:
        for init in ("gmml", "scratch"):
            sel = [r for r in rows if r["fraction"] == fraction and r["init"] == init]
            if not sel:
                continue
            stats = {m: (np.mean([r[m] for r in sel]), np.std([r[m] for r in sel])) for m in metrics}
            summary[(fraction, init)] = stats
            cells = " | ".join(f"{stats[m][0]:.3f} ± {stats[m][1]:.3f}" for m in metrics)
            lines.append(f"| {fraction:.0%} | {init} | {sel[0]['n_train']} | {sel[0]['epochs']} | {cells} |")
    lines.append("")
    lines.append("Difference pretrained - scratch (mean over seeds):")
    lines.append("")
    for fraction in args.fractions:
        if (fraction, "gmml") in summary and (fraction, "scratch") in summary:
            diffs = ", ".join(
                f"{m} {summary[(fraction, 'gmml')][m][0] - summary[(fraction, 'scratch')][m][0]:+.3f}" for m in metrics
            )
            lines.append(f"- {fraction:.0%} labels: {diffs}")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    titles = ["COVID-QU-Ex val accuracy", "COVID-QU-Ex val macro AUC", "pediatric (drift) accuracy", "pediatric (drift) AUC"]
    for ax, metric, title in zip(axes, metrics, titles):
        for init, colour in (("gmml", "tab:blue"), ("scratch", "tab:orange")):
            xs = [f for f in args.fractions if (f, init) in summary]
            ax.errorbar([100 * f for f in xs], [summary[(f, init)][metric][0] for f in xs],
                        yerr=[summary[(f, init)][metric][1] for f in xs], marker="o", capsize=3, color=colour,
                        label="GMML-pretrained" if init == "gmml" else "from scratch")
        ax.set_xscale("log")
        ax.set_xlabel("% of training labels")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out / "summary.png", dpi=90)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
