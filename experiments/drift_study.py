"""The drift test (``spcxr drift``) on real sets: how often it sees drift where there is some, and where there is none.

    python experiments/drift_study.py [--data ../shared/data] [--sizes 20 50 100] [--draws 10] [--checkpoint released]

Features of the released encoder for COVID-QU-Ex train (the reference), COVID-QU-Ex val (no drift expected:
the same dataset's other split) and the pediatric set (drift expected: another hospital, children), val and
pediatric without their near-duplicates of train. For each sample size, ``--draws`` random draws per side
(seeded), an MMD permutation test each (1,000 permutations). Writes ``experiments/results/drift.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from held_out import held_out_images

from spcxr_monai.data import find_images, shared_data_root
from spcxr_monai.metrics.drift import mmd_permutation_test
from spcxr_monai.networks import image_features, load_feature_encoder
from spcxr_monai.pretrained import DEFAULT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=shared_data_root())
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 50, 100])
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--checkpoint", default="released")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "drift.md"))
    args = parser.parse_args()
    data, start = Path(args.data), time.time()
    train = [str(p) for p in find_images(data / "covid-qu-ex" / "train")]
    val, pediatric = held_out_images(data).values()
    network = load_feature_encoder(args.checkpoint)
    encoder = f"`{args.checkpoint}`" + (f": `{DEFAULT}`" if args.checkpoint == "released" else "")
    features = {
        name: image_features(files, network)
        for name, files in (("train", train), ("val", val), ("pediatric", pediatric))
    }
    rng = np.random.default_rng(0)
    lines = [
        "# Drift test on real sets (`spcxr drift`: MMD, Gaussian kernel of median width, 1,000 permutations)",
        "",
        f"`python experiments/drift_study.py --sizes {' '.join(map(str, args.sizes))} --draws {args.draws}` "
        f"(encoder {encoder}). Reference: COVID-QU-Ex train ({len(train)}); COVID-QU-Ex val ({len(val)}) and "
        f"the pediatric set ({len(pediatric)}) without their near-duplicates of train. Each cell: in how many of "
        f"{args.draws} random draws (n images per side) p < 0.01 (pediatric) or p >= 0.05 (val), and the median p.",
        "",
        "| n per side | pediatric vs train: p < 0.01 | median p | val vs train: p >= 0.05 | median p |",
        "|---|---|---|---|---|",
    ]
    for n in args.sizes:
        cells = []
        for name, passes in (("pediatric", lambda p: p < 0.01), ("val", lambda p: p >= 0.05)):
            ps = []
            for draw in range(args.draws):
                ref = features["train"][rng.choice(len(train), n, replace=False)]
                new = features[name][rng.choice(len(features[name]), n, replace=False)]
                ps.append(mmd_permutation_test(ref, new, seed=draw).p_value)
            cells += [f"{sum(map(passes, ps))} / {args.draws}", f"{np.median(ps):.3g}"]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += ["", f"({time.time() - start:.0f} s on this project's CPU, features included.)", ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
