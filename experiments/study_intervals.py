"""95% intervals for the study tables' held-out accuracies, from their committed ``runs.csv``.

    python experiments/study_intervals.py experiments/results/classification_v2/runs.csv \
        experiments/results/classification_long/runs.csv [--out experiments/results/intervals.md]

Each row (labels fraction x recipe) gives the mean accuracy over its seeds on COVID-QU-Ex val and on the
pediatric set with Wilson's 95% interval for that many images (what the test images alone leave uncertain;
the seeds' spread is beside it). A paired test of two recipes needs their per-image predictions, which the
classification evaluation now writes (``predictions.csv``; ``spcxr compare``); these committed runs kept only
their accuracies.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sweep import read_runs

from spcxr_monai.metrics import wilson_interval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="runs.csv files of pretrain_vs_scratch.py")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "intervals.md"))
    args = parser.parse_args()
    lines = [
        "# Held-out accuracies with 95% intervals",
        "",
        f"`python experiments/study_intervals.py {' '.join(args.runs)}`: mean over seeds, Wilson's 95% interval "
        "for the number of test images, and the seeds' standard deviation.",
        "",
    ]
    for path in args.runs:
        rows = read_runs([Path(path)], ("init", "recipe"))
        lines += [
            f"## `{path}`",
            "",
            "| labels | recipe | seeds | COVID-QU-Ex val accuracy [95%] (sd) | pediatric accuracy [95%] (sd) |",
            "|---|---|---|---|---|",
        ]
        for fraction in sorted({r["fraction"] for r in rows}):
            for recipe in dict.fromkeys(r["recipe"] for r in rows if r["fraction"] == fraction):
                sel = [r for r in rows if r["fraction"] == fraction and r["recipe"] == recipe]
                cells = []
                for key in ("covid_val", "pediatric"):
                    acc, n = np.mean([r[f"{key}_acc"] for r in sel]), int(sel[0][f"{key}_n"])
                    ci = wilson_interval(round(acc * n), n)
                    cells.append(
                        f"{acc:.3f} [{ci.low:.3f}, {ci.high:.3f}] ({np.std([r[f'{key}_acc'] for r in sel]):.3f})"
                    )
                lines.append(f"| {fraction:.0%} | {recipe} | {len(sel)} | {cells[0]} | {cells[1]} |")
        lines.append("")
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
