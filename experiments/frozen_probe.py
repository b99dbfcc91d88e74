"""What the frozen encoder knows: a logistic regression on its mean-pooled tokens, no fine-tuning.

    python experiments/frozen_probe.py [--checkpoints released ""] [--data ../shared/data] [--out experiments/results/frozen_probe.md]

For each checkpoint (``released``, a GMML checkpoint path, or ``""`` for a randomly initialised
encoder of the same shape) the encoder's mean-pooled final tokens of ``covid-qu-ex/train``'s training
patients (80%, the classification bundle's split, seed 0) fit a standardised logistic regression,
scored on ``covid-qu-ex/val`` (3 classes) and on the pediatric set (normal vs pneumonia, 1 - p(normal)),
both without the near-duplicates of ``covid-qu-ex/train``. Writes a markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from monai.data import DataLoader, Dataset
from monai.transforms import Compose
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from spcxr_monai.data import eval_datalist, make_datalist, shared_data_root, task_classes
from spcxr_monai.networks import create_vit_classifier, encoder_features, maybe_load_encoder_weights
from spcxr_monai.transforms import cxr_preprocessing

CLASSES, CLASS_MAP = task_classes("3class")
NORMAL = CLASSES.index("normal")


def loader(items: list[dict], size: int) -> DataLoader:
    prep = Compose(cxr_preprocessing(size, file_key=None, ensure_type=True, track_meta=False))
    return DataLoader(Dataset([{"image": i["image"], "label": i["label"]} for i in items], prep), batch_size=64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", nargs="+", default=["released", ""])
    parser.add_argument("--data", default=shared_data_root())
    parser.add_argument("--model-size", default="tiny")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "frozen_probe.md"))
    args = parser.parse_args()
    data = Path(args.data).resolve()
    train_dir = data / "covid-qu-ex" / "train"
    sets = {
        "train": make_datalist(train_dir, None, val_fraction=0.2, seed=0, classes=CLASSES)["training"],
        "covid_val": eval_datalist(str(data / "covid-qu-ex" / "val"), CLASSES, CLASS_MAP, dedup_against=str(train_dir)),
        "pediatric": eval_datalist(str(data / "pediatric" / "train"), CLASSES, CLASS_MAP, dedup_against=str(train_dir)),
    }
    lines = [
        f"Frozen ViT-{args.model_size}/16 at {args.image_size} px, logistic regression on mean-pooled tokens; fitted on "
        f"{len(sets['train'])} covid-qu-ex train images, scored on {len(sets['covid_val'])} covid-qu-ex val and "
        f"{len(sets['pediatric'])} pediatric images (near-duplicates of train removed).",
        "",
        "| encoder | covid-qu-ex val acc | val macro AUC | pediatric acc | pediatric AUC | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for checkpoint in args.checkpoints:
        torch.manual_seed(0)
        start = time.time()
        net = maybe_load_encoder_weights(
            create_vit_classifier(args.model_size, img_size=args.image_size), checkpoint
        ).eval()
        feats = {name: encoder_features(net, loader(items, args.image_size)) for name, items in sets.items()}
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.5, random_state=0))
        probe.fit(*feats["train"])
        x, y = feats["covid_val"]
        probs = probe.predict_proba(x)
        val_acc = float(np.mean(probs.argmax(1) == y))
        val_auc = float(roc_auc_score(y, probs, multi_class="ovr", average="macro"))
        x, y = feats["pediatric"]
        probs = probe.predict_proba(x)
        truth = (y != NORMAL).astype(int)
        ped_acc = float(np.mean((probs.argmax(1) != NORMAL).astype(int) == truth))
        ped_auc = float(roc_auc_score(truth, 1 - probs[:, NORMAL]))
        name = checkpoint or "random init"
        lines.append(
            f"| {name} | {val_acc:.3f} | {val_auc:.3f} | {ped_acc:.3f} | {ped_auc:.3f} | {time.time() - start:.0f} |"
        )
        print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
