"""SPCXR's claim in miniature: GMML-pretrained ViT vs the same ViT from scratch vs a CNN, at 1/10/100% labels.

    python experiments/pretrain_vs_scratch.py [--pretrained released] \
        [--data ../shared/data] [--seeds 0 1 2] [--fractions 0.01 0.1 1.0] \
        [--recipes gmml:5e-4:0.75 scratch:5e-4:0.75 resnet18:1e-3:1] [--out experiments/results]

Each run fine-tunes the classification bundle (``bundles/spcxr_cxr_classification``, 3 classes) on the
``label_fraction`` of ``covid-qu-ex/train``'s training patients (80%; the other 20% is the bundle's
validation split). The model kept is the one with the best validation macro AUC (evaluated
``--val-evals`` times per run), never tuned on the test sets. It is then evaluated on

- ``covid-qu-ex/val`` (3 classes), minus images with a near-duplicate in ``covid-qu-ex/train``;
- the pediatric set (another hospital, never trained on) as normal vs pneumonia: predicted
  pneumonia = argmax is not "normal", score = 1 - p(normal); minus near-duplicates of ``covid-qu-ex/train``.

A recipe is ``INIT[@ENCODER]:LR:LAYER_DECAY[:DROP_PATH][+OPTION...]``: ``gmml`` (the ``--pretrained`` encoder; ``gmml@NAME``
the encoder released as ``NAME`` in ``spcxr_monai/pretrained``), ``scratch`` (the same ViT, random init) or
``resnet18`` / ``densenet121`` (MONAI CNNs from scratch, what a user would pick instead). Every
recipe gets the same data, epochs, batch size, augmentation, schedule and seeds; ``LR`` is the
head's learning rate, ``LAYER_DECAY`` the layer-wise decay of the ViT encoder (1: none), ``DROP_PATH``
the ViT's stochastic depth (the bundle's ``drop_path``; 0 when left out); ``+strongaug`` adds the bundle's
``configs/strong_augmentation.json`` (RandAugment-like intensity operations and a small affine), ``+ema`` its
``configs/ema.json`` (an EMA of the weights, validated and kept), ``+smooth`` its ``configs/label_smoothing.json``
(cross-entropy with label smoothing 0.1). Writes
``runs.csv`` (one row per run), ``summary.md`` (mean ± std over seeds) and ``summary.png``.

    python experiments/pretrain_vs_scratch.py --recipes R... --summarise A/runs.csv B/runs.csv --out DIR

trains nothing: it merges the ``--recipes`` rows of runs made by several invocations into one summary.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from bundle_workflow import run_workflow
from sweep import SweepRun, plot_against_fraction, read_runs, sweep, write_runs

from spcxr_monai.data import eval_datalist, make_datalist, shared_data_root, task_classes
from spcxr_monai.metrics import classification_report, compare_predictions, read_predictions
from spcxr_monai.pretrained import RELEASED, resolve_checkpoint

CLASSES, CLASS_MAP = task_classes("3class")
NORMAL = CLASSES.index("normal")
CNNS = ("resnet18", "densenet121")
TEXT_COLUMNS = ("init", "recipe")
# recipe options: the classification bundle's config files each adds to train.json
RECIPE_OPTIONS = {"strongaug": "strong_augmentation.json", "ema": "ema.json", "smooth": "label_smoothing.json"}


def parse_recipe(spec: str) -> dict:
    """``INIT[@ENCODER]:LR:LAYER_DECAY[:DROP_PATH][+OPTION...]`` -> ``{"init", "encoder", "lr", "layer_decay",
    "drop_path", "configs", "name"}``.

    ``ENCODER`` (``gmml`` only) is a released encoder's name used instead of ``--pretrained``, so that
    runs of two encoders keep apart in one table; ``encoder`` is ``None`` without it. ``DROP_PATH`` (ViT
    recipes only) is 0 when left out, so the names of the recipes run before it existed stay valid.
    Each ``OPTION`` (:data:`RECIPE_OPTIONS`) adds a bundle config file to training (``configs``); ``blockN``
    (ViT recipes) pools the tokens after block N instead of the final ones (``feature_block``, in ``overrides``).
    """
    base, *options = spec.split("+")
    blocks = [int(o[5:]) for o in options if re.fullmatch(r"block\d+", o)]
    options = [o for o in options if not re.fullmatch(r"block\d+", o)]
    unknown = [o for o in options if o not in RECIPE_OPTIONS]
    if unknown:
        raise ValueError(f"recipe {spec!r}: unknown option(s) {unknown}, known: {sorted(RECIPE_OPTIONS)}")
    fields = base.split(":")
    if len(fields) not in (3, 4):
        raise ValueError(f"recipe {spec!r} is not INIT[@ENCODER]:LR:LAYER_DECAY[:DROP_PATH]")
    init, lr, layer_decay, drop_path = [*fields, "0"][:4]
    init, _, encoder = init.partition("@")
    if init not in ("gmml", "scratch", *CNNS):
        raise ValueError(f"unknown init {init!r} in recipe {spec!r}")
    if encoder and (init != "gmml" or encoder not in RELEASED):
        raise ValueError(f"recipe {spec!r}: '@' names a released encoder ({sorted(RELEASED)}) of a gmml recipe")
    if float(drop_path) and init in CNNS:
        raise ValueError(f"recipe {spec!r}: drop path is a ViT option, {init} has none")
    if blocks and init in CNNS:
        raise ValueError(f"recipe {spec!r}: blockN is a ViT option, {init} has no blocks")
    return {
        "init": init,
        "encoder": encoder or None,
        "lr": float(lr),
        "layer_decay": float(layer_decay),
        "drop_path": float(drop_path),
        "configs": [RECIPE_OPTIONS[o] for o in options],
        "overrides": {"feature_block": blocks[-1]} if blocks else {},
        "name": spec,
    }


def cnn_def(name: str, num_classes: int) -> dict:
    """Bundle config of a MONAI 2D CNN for one grey channel.

    ResNet-18 gets the standard stem (7x7 conv with stride 2, then max-pool), as torchvision's: MONAI's
    default stride 1 keeps 4x the activations at every stage, 4x the cost for no gain at 128 px.
    """
    if name == "resnet18":
        return {
            "_target_": "monai.networks.nets.resnet18",
            "spatial_dims": 2,
            "n_input_channels": 1,
            "conv1_t_stride": 2,
            "num_classes": num_classes,
        }
    return {
        "_target_": "monai.networks.nets.DenseNet121",
        "spatial_dims": 2,
        "in_channels": 1,
        "out_channels": num_classes,
    }


def _run_tag(fraction: float, seed: float, recipe: str) -> str:
    """A run's folder and file stem: fraction, seed and recipe, path-safe."""
    return f"f{fraction:g}_s{int(seed)}_{re.sub(r'[^A-Za-z0-9.@+-]', '_', recipe)}"


def paired_lines(rows: list[dict], folders: Sequence[Path]) -> list[str]:
    """Each pretrained recipe against the first scratch and the first CNN recipe, per fraction, seed and held-out
    set, on the same images (``spcxr compare``): COVID-QU-Ex val accuracy by the exact McNemar test (interval:
    paired bootstrap), the pediatric normal-vs-pneumonia AUC by DeLong's test; where both runs kept predictions
    (in the ``predictions/`` folder of one of ``folders``)."""
    recipes = list(dict.fromkeys(r["recipe"] for r in rows))
    baselines = [next((r for r in recipes if r.startswith(p)), None) for p in ("scratch", *CNNS)]
    lines = []
    for pretrained in (r for r in recipes if r.startswith("gmml")):
        for baseline in filter(None, baselines):
            for row in (r for r in rows if r["recipe"] == pretrained):
                for name in ("covid_val", "pediatric"):
                    names = [
                        f"{_run_tag(row['fraction'], row['seed'], rec)}_{name}.csv.gz" for rec in (pretrained, baseline)
                    ]
                    found = [
                        [d / "predictions" / n for d in folders if (d / "predictions" / n).is_file()] for n in names
                    ]
                    if not all(found):
                        continue
                    files = [f[0] for f in found]
                    result = compare_predictions(*(read_predictions(f) for f in files))
                    head = f"- {row['fraction']:.0%} labels, seed {int(row['seed'])}, {name} ({result['n']} images): "
                    if name == "covid_val":  # the table's 3-class accuracy
                        acc, mc = result["paired_bootstrap"]["accuracy"], result["mcnemar"]
                        lines.append(
                            f"{head}{pretrained} - {baseline} accuracy {acc['difference']:+.3f} [{acc['low']:+.3f}, "
                            f"{acc['high']:+.3f}], exact McNemar p = {mc['p_value']:.2g} ({mc['only_a_right']} vs "
                            f"{mc['only_b_right']} images right only by one)"
                        )
                    else:  # the table's pediatric AUC: normal vs pneumonia on 1 - p(normal)
                        auc = result["normal_vs_abnormal_auc"]
                        lines.append(
                            f"{head}{pretrained} - {baseline} normal-vs-pneumonia AUC {auc['difference']:+.3f} "
                            f"[{auc['low']:+.3f}, {auc['high']:+.3f}], DeLong p = {auc['p_value']:.2g}"
                        )
    return ["", "Paired on the same images (`spcxr compare` on the kept predictions):", "", *lines] if lines else []


def _predictions(path: Path) -> tuple[np.ndarray, np.ndarray]:
    kept = read_predictions(path)
    return kept.probs[:, [kept.classes.index(c) for c in CLASSES]], kept.labels


def _keep_compressed(source: Path, target: Path) -> None:
    """``source`` gzipped to ``target`` with no name or time in the header (the same bytes on a rerun): the
    studies' per-image predictions are a quarter of their size in the tree."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as f, open(target, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        shutil.copyfileobj(f, gz)


def _drift_report(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Normal (0) vs pneumonia (1) from a 3-class model: any non-normal argmax counts as pneumonia;
    the AUC scores 1 - p(normal)."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

    truth = (labels != NORMAL).astype(int)
    predicted = (probs.argmax(1) != NORMAL).astype(int)
    return {
        "n": int(len(truth)),
        "accuracy": float(accuracy_score(truth, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(truth, predicted)),
        "macro_auc": float(roc_auc_score(truth, 1 - probs[:, NORMAL])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pretrained",
        default="released",
        help="encoder of plain gmml recipes: a released name or 'released', or a GMML checkpoint "
        "(models/model.pt of the pretraining bundle); the default, the first release, is the one "
        "the committed gmml rows used, whatever 'released' names now",
    )
    parser.add_argument("--data", default=shared_data_root())
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--model-size", default="tiny")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--recipes", nargs="+", default=["gmml:5e-4:0.75", "scratch:5e-4:0.75", "resnet18:1e-3:1"])
    parser.add_argument("--epochs", type=int, default=20, help="epochs at 100%% labels")
    parser.add_argument("--min-steps", type=int, default=600, help="at least this many optimiser steps per run")
    parser.add_argument("--val-evals", type=int, default=10, help="validations per run (model selection)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--work", default="runs/pretrain_vs_scratch", help="checkpoints and logs of each run")
    parser.add_argument(
        "--summarise",
        nargs="+",
        metavar="RUNS_CSV",
        help="only merge the --recipes rows of these runs.csv files into --out's summary",
    )
    args = parser.parse_args()
    if args.summarise:
        summarise_runs(args)
    else:
        run_study(args)


def summarise_runs(args: argparse.Namespace) -> None:
    """``--summarise RUNS_CSV ...``: no training; the ``--recipes`` rows of those files become ``--out``'s
    ``runs.csv`` and summary (runs made by several invocations, e.g. one per fraction, in one table)."""
    paths = [Path(p) for p in args.summarise]
    rows = [row for row in read_runs(paths, TEXT_COLUMNS) if row["recipe"] in args.recipes]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_runs(rows, out)
    n_eval = {k: int(rows[0][f"{k}_n"]) for k in ("covid_val", "pediatric") if f"{k}_n" in rows[0]}
    write_summary(
        rows,
        out,
        f"ViT-{args.model_size}/16 (CNN: MONAI ResNet-18 from scratch) at {args.image_size}x"
        f"{args.image_size}, batch {args.batch_size}; evaluation sets after de-duplication: "
        f"{n_eval}; plain gmml recipes: {args.pretrained}. Runs merged from "
        f"{', '.join(args.summarise)}.",
        prediction_folders=[path.parent for path in paths],
    )


def run_study(args: argparse.Namespace) -> None:
    """Train and evaluate every (fraction, seed, recipe); ``runs.csv`` after each run, the summary at the end."""
    recipes = {r: parse_recipe(r) for r in args.recipes}
    default_encoder = resolve_checkpoint(args.pretrained) if any(r["init"] == "gmml" for r in recipes.values()) else ""
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
    runs = sweep(
        full_train,
        args.fractions,
        args.seeds,
        list(recipes),
        args.batch_size,
        args.epochs,
        args.min_steps,
        args.val_evals,
    )
    for run in runs:
        recipe = recipes[run.arm]
        encoder = (resolve_checkpoint(recipe["encoder"]) or default_encoder) if recipe["init"] == "gmml" else ""
        rows.append(run_one(run, recipe, encoder, args, train_dir, work, eval_sets, out))
        print(json.dumps(rows[-1]), flush=True)
        write_runs(rows, out)
    elapsed = time.time() - started
    note = (
        f"ViT-{args.model_size}/16 (CNNs: MONAI, from scratch) at {args.image_size}x{args.image_size}, batch "
        f"{args.batch_size}, seeds {args.seeds}; {elapsed / 60:.1f} min on this machine. Evaluation sets after "
        f"de-duplication: { ({k: len(v) for k, v in eval_sets.items()}) }; plain gmml recipes: {args.pretrained}."
    )
    write_summary(rows, out, note)


def run_one(
    run: SweepRun,
    recipe: dict,
    encoder: str,
    args: argparse.Namespace,
    train_dir: Path,
    work: Path,
    eval_sets: dict[str, list[dict]],
    out: Path,
) -> dict:
    """Fine-tune one recipe on one labelled subset, keep the best internal-validation model, evaluate it on
    each held-out set (its per-image predictions kept in ``out/predictions/`` for paired tests); its
    ``runs.csv`` row."""
    init = recipe["init"]
    root = work / _run_tag(run.fraction, run.seed, recipe["name"])
    common = {
        "bundle_root": str(root),
        "dataset_dir": str(train_dir),
        "image_size": args.image_size,
        "model_size": args.model_size,
        "batch_size": args.batch_size,
        "seed": run.seed,
    }
    if init in CNNS:
        common["network_def"] = cnn_def(init, len(CLASSES))
    t0 = time.time()
    wf = run_workflow(
        "spcxr_cxr_classification",
        ["train.json", *recipe["configs"]],
        "training",
        **common,
        resume=False,
        pretrained_checkpoint=encoder,
        label_fraction=run.fraction,
        epochs=run.epochs,
        val_interval=run.val_interval,
        learning_rate=recipe["lr"],
        layer_decay=recipe["layer_decay"],
        drop_path=recipe["drop_path"],
        **recipe["overrides"],
        **{"train#checkpoint_saver#save_interval": run.epochs},
    )
    evaluator = wf.parser.get_parsed_content("validate#evaluator")
    row = {
        "fraction": run.fraction,
        "seed": run.seed,
        "init": init,
        "recipe": recipe["name"],
        "n_train": run.n_train,
        "epochs": run.epochs,
        "train_seconds": round(time.time() - t0, 1),
        "internal_val_auc": round(float(evaluator.state.best_metric), 4),
        "best_epoch": int(evaluator.state.best_metric_epoch),
    }
    for name, items in eval_sets.items():
        run_workflow(
            "spcxr_cxr_classification",
            ["train.json", "evaluate.json"],
            "evaluating",
            **common,
            eval_checkpoint=str(root / "models" / "model.pt"),
            **{"validate#items": items, "validate#report_dir": str(root / f"eval_{name}")},
        )
        predictions = out / "predictions" / f"{_run_tag(run.fraction, run.seed, recipe['name'])}_{name}.csv.gz"
        _keep_compressed(root / f"eval_{name}" / "predictions.csv", predictions)
        probs, labels = _predictions(predictions)
        report = _drift_report(probs, labels) if name == "pediatric" else classification_report(probs, labels, CLASSES)
        row.update(
            {
                f"{name}_acc": report["accuracy"],
                f"{name}_bacc": report["balanced_accuracy"],
                f"{name}_auc": report["macro_auc"],
                f"{name}_n": report["n"],
            }
        )
    return row


def write_summary(rows: list[dict], out: Path, note: str, prediction_folders: Sequence[Path] = ()) -> None:
    """``summary.md`` (mean ± std over seeds per labels fraction and recipe) and ``summary.png``."""
    metrics = ["internal_val_auc", "covid_val_acc", "covid_val_auc", "pediatric_acc", "pediatric_auc"]
    lines = [
        note,
        "",
        "| labels | recipe (init:lr:layer decay[:drop path]) | seeds | n train | epochs | internal val AUC (selection) "
        "| covid-qu-ex val acc | val macro AUC | pediatric acc | pediatric AUC |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    fractions = sorted({r["fraction"] for r in rows})
    recipes = list(dict.fromkeys(r["recipe"] for r in rows))
    summary: dict = {}
    for fraction in fractions:
        for recipe in recipes:
            sel = [r for r in rows if r["fraction"] == fraction and r["recipe"] == recipe]
            if not sel:
                continue
            stats = {m: (np.mean([r[m] for r in sel]), np.std([r[m] for r in sel])) for m in metrics}
            summary[(fraction, recipe)] = stats
            cells = " | ".join(f"{stats[m][0]:.3f} ± {stats[m][1]:.3f}" for m in metrics)
            lines.append(
                f"| {fraction:.0%} | {recipe} | {len(sel)} | {int(sel[0]['n_train'])} | {int(sel[0]['epochs'])} "
                f"| {cells} |"
            )
    gmml = [r for r in recipes if r.startswith("gmml")]
    scratch = [r for r in recipes if r.startswith("scratch")]
    for pretrained in gmml if scratch else []:  # one block per encoder / recipe, each against the first scratch
        lines += ["", f"Difference {pretrained} - {scratch[0]} (mean over seeds):", ""]
        for fraction in fractions:
            if (fraction, pretrained) in summary and (fraction, scratch[0]) in summary:
                diffs = ", ".join(
                    f"{m} {summary[(fraction, pretrained)][m][0] - summary[(fraction, scratch[0])][m][0]:+.3f}"
                    for m in metrics[1:]
                )
                lines.append(f"- {fraction:.0%} labels: {diffs}")
    lines += paired_lines(rows, [out, *prediction_folders])
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    titles = [
        "COVID-QU-Ex val accuracy",
        "COVID-QU-Ex val macro AUC",
        "pediatric (drift) accuracy",
        "pediatric (drift) AUC",
    ]
    plot_against_fraction(rows, "recipe", metrics[1:], titles, "% of training labels", out / "summary.png")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
