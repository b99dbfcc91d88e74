"""Throughput of ``spcxr prepare`` with 1 and 2 worker processes, and the cost of a rerun over a finished folder.

    python benchmarks/prepare_throughput.py [--data ../shared/data] [--copies 8] [--pngs 400] [--size 512]

Inputs (copied to a temporary folder first): the shared DICOMs (CR and DX chests, JPEG 2000 and JPEG-LS;
the broken one included, as an archive has them) repeated ``--copies`` times, and ``--pngs`` COVID-QU-Ex
PNGs. Prints a Markdown table: files, seconds and files/s per set and worker count, the 2-worker speed-up,
and the rerun's time as a share of the first run's.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from spcxr_monai.data import shared_data_root
from spcxr_monai.data.prepare import prepare_dataset


def _dicoms(data: Path, dst: Path, copies: int) -> Path:
    for i in range(copies):
        shutil.copytree(data / "dicom", dst / f"copy{i:02d}")
    return dst


def _pngs(data: Path, dst: Path, count: int) -> Path:
    dst.mkdir(parents=True)
    files = sorted((data / "covid-qu-ex" / "train").rglob("images/*.png"))[:: max(1, 3728 // count)][:count]
    for path in files:
        shutil.copy(path, dst / f"{path.parent.parent.name}_{path.name}")
    return dst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=shared_data_root())
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--pngs", type=int, default=400)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    data = Path(args.data)
    print(f"spcxr prepare --size {args.size}; files/s over the whole run (process start-up included)\n")
    print("| input | files | workers | seconds | files/s | speed-up | rerun (s) | rerun / first run |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sets = {
            f"shared DICOMs x {args.copies}": _dicoms(data, tmp / "dicom", args.copies),
            "COVID-QU-Ex PNGs (256 px)": _pngs(data, tmp / "png", args.pngs),
        }
        for name, src in sets.items():
            one = None
            for workers in (1, 2):
                out = tmp / f"out_{src.name}_{workers}"
                start = time.perf_counter()
                summary = prepare_dataset(src, out, size=args.size, workers=workers)
                took = time.perf_counter() - start
                start = time.perf_counter()
                prepare_dataset(src, out, size=args.size, workers=workers)
                rerun = time.perf_counter() - start
                one = one or took
                print(
                    f"| {name} | {summary['files']} | {workers} | {took:.1f} | {summary['files'] / took:.2f} | "
                    f"{one / took:.2f}x | {rerun:.2f} | {rerun / took:.1%} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
