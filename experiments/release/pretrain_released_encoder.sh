#!/usr/bin/env bash
# The released GMML encoder (spcxr_monai/pretrained/): ViT-Ti/16 at 128 px, pretrained on the 3,728
# COVID-QU-Ex *train* images used as unlabelled data (never val, never pediatric), with a k-NN probe of
# the frozen encoder on a labelled subset of that same train split every 2 epochs (bank / query split by
# patient). One torch thread, so the machine's other core stays free for other work.
#   bash experiments/release/pretrain_released_encoder.sh [EPOCHS]   (resumes where a run stopped)
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA="${SPCXR_DATA:-$(cd .. && pwd)/shared/data}"
RUN="${RUN_DIR:-experiments/runs/gmml_release}"
EPOCHS="${1:-60}"
mkdir -p "$RUN"
cd bundles/spcxr_gmml_pretrain
OMP_NUM_THREADS=1 python -m monai.bundle run training --config_file configs/train.json --logging_file configs/logging.conf \
    --bundle_root "../../$RUN" --dataset_dir "$DATA/covid-qu-ex/train" --probe_dir "$DATA/covid-qu-ex/train" \
    --model_size tiny --image_size 128 --batch_size 32 --base_lr 0.004 --warmup_epochs 3 --epochs "$EPOCHS" \
    --probe_interval 2 --probe_fraction 0.3 --num_threads 1 --seed 0
