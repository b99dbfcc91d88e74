"""What the frozen encoder knows: a logistic regression on its mean-pooled tokens, no fine-tuning.

    python experiments/frozen_probe.py [--checkpoints released ""] [--data ../shared/data] [--out experiments/results/frozen_probe.md] [--blocks-out FILE]

For each checkpoint (``released``, a GMML checkpoint path, or ``""`` for a randomly initialised
encoder of the same shape) the encoder's mean-pooled final tokens of ``covid-qu-ex/train``'s training
patients (80%, the classification bundle's split, seed 0) fit a standardised logistic regression,
scored on ``covid-qu-ex/val`` (3 classes) and on the pediatric set (normal vs pneumonia, 1 - p(normal)),
both without the near-duplicates of ``covid-qu-ex/train``. A second row reads the tokens of the block
whose probe scores best on the bundle's internal validation split (the other 20% of train's patients;
never on val or pediatric): masked-image pretraining leaves a small ViT's most separable features in its
middle blocks (TinyMIM). Writes a markdown table, and with ``--blocks-out`` every block's probe.
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

from spcxr_monai.data import eval_datalist, make_datalist, shared_data_root, split_items, task_classes
from spcxr_monai.metrics import probe_accuracy
from spcxr_monai.networks import create_vit_classifier, encoder_features, maybe_load_encoder_weights
from spcxr_monai.transforms import cxr_preprocessing

CLASSES, CLASS_MAP = task_classes("3class")
NORMAL = CLASSES.index("normal")


def loader(items: list[dict], size: int) -> DataLoader:
    prep = Compose(cxr_preprocessing(size, file_key=None, ensure_type=True, track_meta=False))
    return DataLoader(Dataset([{"image": i["image"], "label": i["label"]} for i in items], prep), batch_size=64)


def probe_scores(probe, feats: dict, index: int) -> dict[str, float]:
    """Accuracy / AUC of a probe fitted on features ``index`` (a block, or -1) on covid val and pediatric."""
    x, y = feats["covid_val"]
    probs = probe.predict_proba(x[:, index])
    scores = {
        "val_acc": float(np.mean(probs.argmax(1) == y)),
        "val_auc": float(roc_auc_score(y, probs, multi_class="ovr", average="macro")),
    }
    x, y = feats["pediatric"]
    probs = probe.predict_proba(x[:, index])
    truth = (y != NORMAL).astype(int)
    scores["ped_acc"] = float(np.mean((probs.argmax(1) != NORMAL).astype(int) == truth))
    scores["ped_auc"] = float(roc_auc_score(truth, 1 - probs[:, NORMAL]))
    return scores


def fit_probe(feats: dict, index: int):
    """A standardised logistic regression on the training split's features at ``index`` (a block, or -1)."""
    x, y = feats["train"]
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.5, random_state=0)).fit(x[:, index], y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", nargs="+", default=["released", ""])
    parser.add_argument("--data", default=shared_data_root())
    parser.add_argument("--model-size", default="tiny")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "frozen_probe.md"))
    parser.add_argument("--blocks-out", default=None, help="also write every block's probe (internal split, val)")
    args = parser.parse_args()
    data = Path(args.data).resolve()
    train_dir = data / "covid-qu-ex" / "train"
    split = make_datalist(train_dir, None, val_fraction=0.2, seed=0, classes=CLASSES)
    sets = {
        "train": split["training"],
        "internal": split["validation"],
        "covid_val": eval_datalist(str(data / "covid-qu-ex" / "val"), CLASSES, CLASS_MAP, dedup_against=str(train_dir)),
        "pediatric": eval_datalist(str(data / "pediatric" / "train"), CLASSES, CLASS_MAP, dedup_against=str(train_dir)),
    }
    lines = [
        f"Frozen ViT-{args.model_size}/16 at {args.image_size} px, logistic regression on mean-pooled tokens; fitted on "
        f"{len(sets['train'])} covid-qu-ex train images, scored on {len(sets['covid_val'])} covid-qu-ex val and "
        f"{len(sets['pediatric'])} pediatric images (near-duplicates of train removed).",
        "",
        "| encoder | features | covid-qu-ex val acc | val macro AUC | pediatric acc | pediatric AUC | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    # the pretraining bundle's monitor: k-NN (k=20) on 30% of each side of a 70/30 patient split of train, seed 0
    monitor = make_datalist(train_dir, None, val_fraction=0.3, seed=0, classes=CLASSES)
    monitor = {side: split_items(monitor, side, 0.3, 0) for side in ("training", "validation")}
    block_lines = [
        "Logistic regression on the mean-pooled tokens after each block (before the final norm; `final`: after it),",
        "fitted on the training split; accuracy on the internal validation split (selection) and on covid-qu-ex val;",
        "and the pretraining bundle's k-NN monitor (k=20, 30% of a 70/30 patient split of train) on the same tokens.",
        "",
        "| encoder | block | internal val acc | covid-qu-ex val acc | pretraining monitor k-NN acc |",
        "|---|---|---|---|---|",
    ]
    for checkpoint in args.checkpoints:
        torch.manual_seed(0)
        start = time.time()
        net = maybe_load_encoder_weights(
            create_vit_classifier(args.model_size, img_size=args.image_size), checkpoint
        ).eval()
        blocks = list(range(1, len(net.vit.blocks) + 1))
        feats = {
            name: encoder_features(net, loader(items, args.image_size), blocks=blocks) for name, items in sets.items()
        }
        name = checkpoint or "random init"
        by_path = {}
        for split in ("train", "internal"):
            by_path.update({str(i["image"]): (x, y) for i, x, y in zip(sets[split], *feats[split])})
        knn_sets = [[by_path[str(i["image"])] for i in monitor[side]] for side in ("training", "validation")]
        knn_train, knn_val = ([np.stack([f for f, _ in pairs]), np.array([y for _, y in pairs])] for pairs in knn_sets)
        internal, probes = [], []  # per block, then the final tokens (index -1)
        for index, label in [*enumerate(map(str, blocks)), (-1, "final")]:
            probe = fit_probe(feats, index)
            probes.append(probe)
            internal.append(float(np.mean(probe.predict(feats["internal"][0][:, index]) == feats["internal"][1])))
            val = float(np.mean(probe.predict(feats["covid_val"][0][:, index]) == feats["covid_val"][1]))
            knn = probe_accuracy(
                knn_train[0][:, index], knn_train[1], knn_val[0][:, index], knn_val[1], probe="knn", k=20
            )
            block_lines.append(f"| {name} | {label} | {internal[-1]:.3f} | {val:.3f} | {knn['accuracy']:.3f} |")
        best = int(np.argmax(internal[:-1]))
        for index, features in [(-1, "final tokens"), (best, f"block {blocks[best]} (best internal)")]:
            sc = probe_scores(probes[index], feats, index)  # the probe fitted above, not a second fit
            lines.append(
                f"| {name} | {features} | {sc['val_acc']:.3f} | {sc['val_auc']:.3f} | {sc['ped_acc']:.3f} | "
                f"{sc['ped_auc']:.3f} | {time.time() - start:.0f} |"
            )
            print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    if args.blocks_out:
        Path(args.blocks_out).write_text("\n".join(block_lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
