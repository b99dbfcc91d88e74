"""The ``spcxr`` command: thin wrappers over the library for common jobs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from spcxr_monai.data import CXRInputError, make_datalist, sample_dir


def _class_map(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"spcxr: --map takes FOLDER=CLASS, got {pair!r}")
        folder, name = pair.split("=", 1)
        out[folder] = name
    return out


def _datalist(args: argparse.Namespace) -> int:
    datalist = make_datalist(
        args.source,
        args.output,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        classes=args.classes,
        class_map=_class_map(args.map),
        verify=not args.no_verify,
    )
    print(json.dumps({"output": args.output, "labels": datalist["labels"], "counts": datalist["counts"]}))
    return 0


def _sample(args: argparse.Namespace) -> int:
    print(sample_dir())
    return 0


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

    p = sub.add_parser("sample", help="print the folder of the embedded sample")
    p.set_defaults(func=_sample)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CXRInputError as e:
        print(f"spcxr: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
