#!/usr/bin/env bash
# The segmentation study behind experiments/results/segmentation/summary.md, in the order it was run.
# One torch thread per job (it ran beside the classification study on the 2 cores of this machine).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
STUDY="python experiments/segmentation_pretrain_vs_scratch.py --work runs/segmentation_study"
R=experiments/results/segmentation

$STUDY --fractions 0.1 --seeds 0 1 2 --out $R/f10
$STUDY --fractions 1.0 --seeds 0 --out $R/f100
$STUDY --fractions 0.01 --seeds 0 1 2 --out $R/f1

python experiments/segmentation_pretrain_vs_scratch.py --out $R --summarise $R/f*/runs.csv
