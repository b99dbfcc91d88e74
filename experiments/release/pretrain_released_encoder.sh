#!/usr/bin/env bash
# The released GMML encoder (spcxr_monai/pretrained/): ViT-Ti/16 at 128 px, pretrained on the 3,728
# COVID-QU-Ex *train* images used as unlabelled data (never val, never pediatric), with a k-NN probe of
# the frozen encoder on a labelled subset of that same train split every 2 epochs (bank / query split by
# patient). Two stages, each resumable where it stopped:
#   bash experiments/release/pretrain_released_encoder.sh 1 [EPOCHS]   from scratch (60 epochs, 1 thread)
#   bash experiments/release/pretrain_released_encoder.sh 2 [EPOCHS]   a warm restart from stage 1's last
#       weights (40 epochs, half the peak lr, 2 warm-up epochs, 2 threads: the machine to itself)
#   bash experiments/release/pretrain_released_encoder.sh 3 EPOCHS [BUNDLE ARGS...]   a second warm restart,
#       from the released stage-2 encoder (gmml-vit-tiny16-cxr128-e100, head included), batch 64 at the same
#       base lr (peak lr 5e-4 by the bundle's linear scaling), on a GPU with masks drawn in 8 loader workers;
#       EPOCHS sized to the time a lent GPU gives (experiments/release/gpu_stage3.sh)
#   bash experiments/release/pretrain_released_encoder.sh 4 EPOCHS [BUNDLE ARGS...]   encoder v2: a warm restart
#       from the released e120 encoder (head included) on three times the images, COVID-QU-Ex train + the
#       unlabelled covid-radiography-pool (12,127 CXRs; never val, never pediatric), batch 64, peak lr 5e-4,
#       1 thread (the other core stays free); its validation split is 10% of those patients
#   bash experiments/release/pretrain_released_encoder.sh 5 EPOCHS [BUNDLE ARGS...]   stage 5 onwards (stages 5-9
#       made encoder v3): a warm restart from the latest stage's weights (STAGE_INIT: a release name or a
#       checkpoint; default v2, where stage 5 started: its weights are in the git history since v3) on the same
#       12,127 images, same recipe as stage 4, run folder gmml_stage5 (STAGE_RUN overrides it for stage 6, 7, ...);
#       fit it to the session with --max_minutes; STAGE_LR sets the base lr (default 0.002: peak 5e-4 at batch 64)
# SPCXR_DATA: the data root (default ../shared/data); SPCXR_RUNS: where the run folders go (experiments/runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA="${SPCXR_DATA:-$(cd .. && pwd)/shared/data}"
RUNS="${SPCXR_RUNS:-$PWD/experiments/runs}"
STAGE="${1:-1}"
BATCH=32
EXTRA=()
DATASET="$DATA/covid-qu-ex/train"
case "$STAGE" in
    1) RUN="$RUNS/gmml_release"; INIT=""; EPOCHS="${2:-60}"; LR=0.004; WARMUP=3; THREADS=1 ;;
    2) RUN="$RUNS/gmml_continue"; INIT="$RUNS/gmml_release/models/model_final.pt"
       EPOCHS="${2:-40}"; LR=0.002; WARMUP=2; THREADS=2 ;;
    3) RUN="$RUNS/gmml_stage3"; INIT="gmml-vit-tiny16-cxr128-e100"; EPOCHS="${2:?stage 3 needs EPOCHS}"
       LR=0.002; WARMUP=2; THREADS=4; BATCH=64; EXTRA=(--num_workers 8 --mask_in_loader true "${@:3}") ;;
    4) RUN="$RUNS/gmml_v2"; INIT="gmml-vit-tiny16-cxr128-e120"; EPOCHS="${2:?stage 4 needs EPOCHS}"
       LR=0.002; WARMUP=1; THREADS=1; BATCH=64; EXTRA=("${@:3}")
       DATASET="['$DATA/covid-qu-ex/train','$DATA/covid-radiography-pool']" ;;
    5) RUN="${STAGE_RUN:-$RUNS/gmml_stage5}"; INIT="${STAGE_INIT:-gmml-vit-tiny16-cxr128-v2}"
       EPOCHS="${2:?stage 5 needs EPOCHS}"; LR="${STAGE_LR:-0.002}"; WARMUP=1; THREADS=1; BATCH=64; EXTRA=("${@:3}")
       DATASET="['$DATA/covid-qu-ex/train','$DATA/covid-radiography-pool']" ;;
    *) echo "stage must be 1, 2, 3, 4 or 5, got '$STAGE'" >&2; exit 2 ;;
esac
mkdir -p "$RUN"
cd bundles/spcxr_gmml_pretrain
# --pretrained_checkpoint is explicit: the bundle's default ("released") would start from the released weights;
# --continue_lr_scale 1: each stage's peak lr is the recipe's own (the bundle scales a continuing run's lr by 0.1)
OMP_NUM_THREADS="$THREADS" "${PYTHON:-python}" -m monai.bundle run training --config_file configs/train.json \
    --logging_file configs/logging.conf --bundle_root "$RUN" --pretrained_checkpoint "$INIT" \
    --dataset_dir "$DATASET" --probe_dir "$DATA/covid-qu-ex/train" \
    --model_size tiny --image_size 128 --batch_size "$BATCH" --base_lr "$LR" --continue_lr_scale 1 --warmup_epochs "$WARMUP" --epochs "$EPOCHS" \
    --probe_interval "${PROBE_INTERVAL:-2}" --probe_fraction 0.3 --num_threads "$THREADS" --seed 0 "${EXTRA[@]}"
