"""The ``spcxr`` command: argument parsing and printing over the library's functions for common jobs."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence

from spcxr_monai.data.datalist import make_datalist
from spcxr_monai.data.errors import CXRInputError
from spcxr_monai.data.prepare import prepare_dataset
from spcxr_monai.data.sample import sample_dir
from spcxr_monai.export import export_bundle
from spcxr_monai.gate import InputGate
from spcxr_monai.metrics.drift import drift_report
from spcxr_monai.metrics.report import compare_predictions, prediction_report, read_predictions
from spcxr_monai.predict import predict_files


def _key_values(pairs: Sequence[str], flag: str, form: str, json_values: bool = False) -> dict:
    """``KEY=VALUE`` arguments as a dict (values parsed as JSON where they are JSON, with ``json_values``)."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"spcxr: {flag} takes {form}, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key] = value
        if json_values:
            try:
                out[key] = json.loads(value)
            except json.JSONDecodeError:
                pass
    return out


def _datalist(args: argparse.Namespace) -> int:
    datalist = make_datalist(
        args.source,
        args.output,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        classes=args.classes,
        class_map=_key_values(args.map, "--map", "FOLDER=CLASS"),
        verify=not args.no_verify,
    )
    print(json.dumps({"output": args.output, "labels": datalist["labels"], "counts": datalist["counts"]}))
    return 0


def _prepare(args: argparse.Namespace) -> int:
    """``spcxr prepare``: the summary as JSON on stdout (counts by status and by reason)."""
    summary = prepare_dataset(
        args.source,
        args.output,
        size=args.size,
        workers=args.workers,
        modalities=args.modalities,
        frontal_only=not args.all_views,
        dedup_threshold=args.dedup,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    print(json.dumps(summary, indent=1))
    return 0


def _check(args: argparse.Namespace) -> int:
    """``spcxr check``: the input gate's verdict per file; exit status 1 when any file is flagged."""
    results = InputGate(args.calibration).check(args.files)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        for path, result in results.items():
            print(f"{'ok' if result['ok'] else 'FLAGGED'}\t{path}\t{'; '.join(result['reasons'])}")
    return 0 if all(r["ok"] for r in results.values()) else 1


def _drift(args: argparse.Namespace) -> int:
    """``spcxr drift``: an MMD two-sample test on the pretrained encoder's features of two image folders."""
    report = drift_report(
        args.reference,
        args.new,
        n=args.n,
        permutations=args.permutations,
        seed=args.seed,
        checkpoint=args.checkpoint,
        image_size=args.image_size,
        keep_duplicates=args.keep_duplicates,
        top=args.top,
        plot=args.plot,
    )
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    verdict = "drift" if report["p_value"] < args.alpha else "no evidence of drift"
    print(
        f"{verdict}: p = {report['p_value']:.4g} (MMD² {report['mmd2']:.4g}, {report['effect_size']:.1f} SD above "
        f"the permutations), {report['n_reference']} reference vs {report['n_new']} new images "
        f"({report['near_duplicates_dropped']} near-duplicates dropped)"
    )
    for item in report["most_shifted"]:
        print(f"  {item['witness']:+.4f}  {item['image']}")
    return 0


def _overrides(pairs: Sequence[str]) -> dict:
    return _key_values(pairs, "--set", "KEY=VALUE", json_values=True)


def _predict(args: argparse.Namespace) -> int:
    """``spcxr predict``: {file: {class: probability, "gate": ...}} as strict JSON (no NaN); a file that failed
    gets {"error": reason} (and exit status 1), one flagged by the input gate is answered and named on stderr."""
    results = predict_files(args.bundle, args.files, gate=not args.no_gate, overrides=_overrides(args.set))
    for f, answer in results.items():
        if "error" in answer:
            print(f"spcxr predict: {f}: {answer['error']}", file=sys.stderr)
        elif not answer.get("gate", {"ok": True})["ok"]:
            print(
                f"spcxr predict: {f}: answered, but flagged by the input gate: {'; '.join(answer['gate']['reasons'])}",
                file=sys.stderr,
            )
    print(json.dumps(results, indent=2, allow_nan=False))
    return 1 if any("error" in r for r in results.values()) else 0


def _export(args: argparse.Namespace) -> int:
    """Write TorchScript / ONNX files of a trained bundle; print {format: file} as JSON."""
    with contextlib.redirect_stdout(sys.stderr):  # MONAI's export logs; stdout is for the JSON
        written = export_bundle(
            args.bundle, tuple(args.formats), args.output_dir, args.checkpoint, _overrides(args.set)
        )
    print(json.dumps(written, indent=2))
    return 0


def _interval(value: dict) -> str:
    return f"{value['estimate']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"


def _report(args: argparse.Namespace) -> int:
    """``spcxr report``: a predictions.csv's figures with 95% intervals, calibration, curves."""
    report = prediction_report(
        read_predictions(args.predictions),
        threshold=args.threshold,
        plots_dir=args.plots,
        n_resamples=args.resamples,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    intervals = report["intervals"]
    print(f"{args.predictions}: {report['n']} images, classes {', '.join(report['classes'])} (95% intervals)")
    for name in ("accuracy", "balanced_accuracy", "macro_f1", "macro_auc", "normal_vs_abnormal_auc"):
        if name in intervals:
            print(f"  {name:24s} {_interval(intervals[name])}  ({intervals[name]['method']})")
    for name, per in intervals["per_class"].items():
        print(f"  {name:12s} recall {_interval(per['recall'])}  precision {_interval(per['precision'])}")
    print(f"  expected calibration error {report['calibration']['ece']:.3f} ({report['calibration']['n_bins']} bins)")
    if "screening" in report:
        sc = report["screening"]
        print(
            f"  screening at {sc['threshold']:.4f}: sensitivity {_interval(sc['sensitivity'])}, "
            f"specificity {_interval(sc['specificity'])}"
        )
    for name, path in report.get("plots", {}).items():
        print(f"  plot {name}: {path}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    """``spcxr compare``: two predictions.csv on the same images, paired."""
    result = compare_predictions(
        read_predictions(args.a), read_predictions(args.b), n_resamples=args.resamples, seed=args.seed
    )
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"A {args.a} - B {args.b}, {result['n']} images paired by file")
    m = result["mcnemar"]
    acc = result["paired_bootstrap"]["accuracy"]
    print(
        f"  accuracy difference {acc['difference']:+.3f} [{acc['low']:+.3f}, {acc['high']:+.3f}], exact McNemar "
        f"p = {m['p_value']:.4g} ({m['only_a_right']} images only A right, {m['only_b_right']} only B)"
    )
    for name in ("balanced_accuracy", "macro_f1", "macro_auc"):
        d = result["paired_bootstrap"][name]
        print(
            f"  {name} difference {d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}], paired bootstrap "
            f"p = {d['p_value']:.4g}"
        )
    if "normal_vs_abnormal_auc" in result:
        d = result["normal_vs_abnormal_auc"]
        print(
            f"  normal vs abnormal AUC {d['auc_a']:.3f} vs {d['auc_b']:.3f}: difference {d['difference']:+.3f} "
            f"[{d['low']:+.3f}, {d['high']:+.3f}], DeLong p = {d['p_value']:.4g}"
        )
    return 0


def _sample(args: argparse.Namespace) -> int:
    print(sample_dir())
    return 0


def _add_bootstrap_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _add_override_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="inference config overrides, e.g. ckpt_dir=runs/cls/models (the network's sizes are read off the checkpoint)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spcxr", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("datalist", help="make a MONAI datalist JSON from a class-folder tree or a CSV")
    p.add_argument("source", help="root/<class>/[images/] folder tree, or a CSV with image,label[,mask,patient]")
    p.add_argument("-o", "--output", required=True, help="datalist JSON to write")
    p.add_argument("--val-fraction", type=float, default=0.2, help="patients per class for validation")
    p.add_argument("--test-fraction", type=float, default=0.0, help="patients per class for test")
    p.add_argument("--seed", type=int, default=0, help="split seed")
    p.add_argument("--classes", nargs="+", help="label order (default: sorted class names)")
    p.add_argument("--map", nargs="+", default=[], metavar="FOLDER=CLASS", help="rename or merge class folders")
    p.add_argument("--no-verify", action="store_true", help="skip opening every image header")
    p.set_defaults(func=_datalist)

    p = sub.add_parser(
        "predict", help="class probabilities for CXR files (DICOM, PNG, ...) from a classification bundle"
    )
    p.add_argument("files", nargs="+", help="image files")
    p.add_argument("--bundle", default="bundles/spcxr_cxr_classification", help="trained classification bundle folder")
    _add_override_option(p)
    p.add_argument("--no-gate", action="store_true", help="leave out the input gate's verdict (spcxr check)")
    p.set_defaults(func=_predict)

    p = sub.add_parser("export", help="TorchScript / ONNX of a trained classification or segmentation bundle")
    p.add_argument("bundle", help="trained bundle folder (configs/inference.json, models/model.pt)")
    p.add_argument("--formats", nargs="+", default=["torchscript", "onnx"], choices=["torchscript", "onnx"])
    p.add_argument("-o", "--output-dir", help="where to write model.ts / model.onnx (default: the bundle's models/)")
    p.add_argument("--checkpoint", help="weights to export (default: models/model.pt)")
    _add_override_option(p)
    p.set_defaults(func=_export)

    p = sub.add_parser(
        "prepare",
        help="convert an archive (DICOM / PNG / JPEG tree or CSV) once into 8-bit PNGs and a "
        "manifest for pretraining; resumable, parallel",
    )
    p.add_argument("source", help="folder tree, or a CSV file with a 'path' column")
    p.add_argument("output", help="prepared folder: images/, manifest.csv")
    p.add_argument("--size", type=int, default=512, help="longer side in pixels, aspect ratio kept (default 512)")
    p.add_argument("--workers", type=int, default=1, help="decoding processes (default 1)")
    p.add_argument("--modalities", nargs="*", default=["CR", "DX"], help="DICOM modalities kept (none given: all)")
    p.add_argument("--all-views", action="store_true", help="keep lateral and other non-PA/AP views")
    p.add_argument(
        "--dedup",
        type=float,
        nargs="?",
        const=0.95,
        default=None,
        metavar="THRESHOLD",
        help="reject near-duplicates (thumbnail correlation above THRESHOLD, default 0.95)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_prepare)

    p = sub.add_parser(
        "check",
        help="is each file a frontal chest radiograph the models can answer for? the "
        "reader's checks, photometric / layout sanity and the encoder's distance",
    )
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true", help="print {path: {ok, reasons, scores}}")
    p.add_argument("--calibration", default=None, help="a gate calibration .npz (default: the released encoder's)")
    p.set_defaults(func=_check)

    p = sub.add_parser(
        "drift",
        help="has NEW drifted from REFERENCE? an MMD two-sample test on the pretrained "
        "encoder's features, with the most shifted images",
    )
    p.add_argument("reference", help="folder of reference images (e.g. the training set)")
    p.add_argument("new", help="folder of images to test")
    p.add_argument("--n", type=int, default=None, help="draw at most N images per side (seeded)")
    p.add_argument("--permutations", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", default="released", help="encoder: 'released', a release's name or a checkpoint")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument(
        "--keep-duplicates",
        action="store_true",
        help="keep NEW images that have a near-duplicate in REFERENCE (dropped by default)",
    )
    p.add_argument("--top", type=int, default=10, help="how many of the most shifted images to list")
    p.add_argument("--alpha", type=float, default=0.01, help="significance level of the one-line verdict")
    p.add_argument("--plot", help="PNG: permutation distribution and the features' first principal components")
    p.add_argument("--json", action="store_true", help="print a JSON object (p_value, mmd2, effect_size, ...)")
    p.set_defaults(func=_drift)

    p = sub.add_parser(
        "report",
        help="a classifier's predictions.csv: figures with 95%% intervals, calibration, "
        "ROC / PR curves, a screening operating point",
    )
    p.add_argument("predictions", help="predictions.csv of the classification evaluation (image,label,p_<class>...)")
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="normal-vs-abnormal threshold on 1 - p(normal): sensitivity and specificity at it",
    )
    p.add_argument("--plots", default=None, help="folder for reliability, ROC, PR and confusion-matrix PNGs")
    _add_bootstrap_options(p)
    p.set_defaults(func=_report)

    p = sub.add_parser(
        "compare",
        help="two predictions.csv on the same images: paired differences with 95%% "
        "intervals and p-values (exact McNemar, paired bootstrap, DeLong)",
    )
    p.add_argument("a", help="predictions.csv of model A")
    p.add_argument("b", help="predictions.csv of model B (the same images)")
    _add_bootstrap_options(p)
    p.set_defaults(func=_compare)

    p = sub.add_parser("sample", help="print the folder of the embedded sample")
    p.set_defaults(func=_sample)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CXRInputError, ValueError) as e:  # bad input or argument: one line, no traceback
        print(f"spcxr: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
