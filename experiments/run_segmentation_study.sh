#!/usr/bin/env bash
# The segmentation study behind experiments/results/segmentation/summary.md, in the order it was run.
# One torch thread per job (it ran beside the classification study on the 2 cores of the machine that
# measured it; each 10% run took ~15 min). Seeds and fractions as far as one session's time allowed.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
STUDY="python experiments/segmentation_pretrain_vs_scratch.py --work runs/segmentation_study"
R=experiments/results/segmentation

$STUDY --fractions 0.1 --seeds 0 --out $R/f10_s0
$STUDY --fractions 0.01 --seeds 0 --out $R/f1_s0
$STUDY --fractions 1.0 --seeds 0 --epochs 2 --out $R/f100_s0
$STUDY --fractions 0.1 --seeds 1 --inits gmml --out $R/f10_s1
$STUDY --fractions 0.1 --seeds 1 --inits scratch --out $R/f10_s1_scratch  # ran beside the line above
# the session after (from a frozen copy of the repository, --data ../shared/data), the two side by side
$STUDY --fractions 0.1 --seeds 2 --inits gmml --out $R/f10_s2_gmml
$STUDY --fractions 0.1 --seeds 2 --inits scratch --out $R/f10_s2_scratch

# 256 x 256 (the masks' own size) at 10% of the masks, seed 0 (the session after): does resolution close
# the Dice gap? The scratch run at 256 px was started beside it and stopped unfinished (the session's time).
python experiments/segmentation_pretrain_vs_scratch.py --work runs/segmentation_256 --image-size 256 \
    --fractions 0.1 --seeds 0 --inits gmml --out ${R}_256/f10_s0_gmml

# What a user would pick instead (the session after): MONAI's residual UNet from scratch, 10%, 3 seeds (~2.5 min each)
$STUDY --fractions 0.1 --seeds 0 1 2 --inits unet --out $R/f10_s012_unet
# Is the budget the limit? 10% of the masks, seed 0, 1,200 steps instead of 400 (GMML beside UNet then scratch)
LONG="python experiments/segmentation_pretrain_vs_scratch.py --work runs/segmentation_long --fractions 0.1 --seeds 0 --min-steps 1200 --val-evals 6"
$LONG --inits gmml --out ${R}_long/f10_s0_gmml
$LONG --inits unet --out ${R}_long/f10_s0_unet
$LONG --inits scratch --out ${R}_long/f10_s0_scratch
python experiments/segmentation_pretrain_vs_scratch.py --out ${R}_long --summarise ${R}_long/f10_*/runs.csv
# The UNet with 3,600 steps (alone, 2 threads): how close does a CNN get to the 0.96 target?
OMP_NUM_THREADS=2 python experiments/segmentation_pretrain_vs_scratch.py --work runs/segmentation_long --fractions 0.1 \
    --seeds 0 --inits unet --min-steps 3600 --val-evals 6 --out ${R}_long3600/f10_s0_unet

python experiments/segmentation_pretrain_vs_scratch.py --out $R --summarise $R/f*/runs.csv

# The encoder pretrained 40 epochs longer (gmml-vit-tiny16-cxr128-e100, the default since), 10% of the masks,
# seed 0, beside the classification study (the rows above used the first release, gmml-vit-tiny16-cxr128)
E100="--pretrained gmml-vit-tiny16-cxr128-e100"
python experiments/segmentation_pretrain_vs_scratch.py $E100 --work runs/segmentation_e100 --fractions 0.1 --seeds 0 \
    --inits gmml --out ${R}_e100/f10_s0
python experiments/segmentation_pretrain_vs_scratch.py $E100 --out ${R}_e100 --summarise ${R}_e100/f10_*/runs.csv

# The encoder with 20 more epochs on a lent GPU (gmml-vit-tiny16-cxr128-e120), same run as the lines above
E120="--pretrained gmml-vit-tiny16-cxr128-e120"
python experiments/segmentation_pretrain_vs_scratch.py $E120 --work runs/segmentation_e120 --fractions 0.1 --seeds 0 \
    --inits gmml --out ${R}_e120/f10_s0
python experiments/segmentation_pretrain_vs_scratch.py $E120 --out ${R}_e120 --summarise ${R}_e120/f10_*/runs.csv

# Seeds 1 and 2 of the line above (the session after; raw masks as the seed-0 row), and seed 0 again with the
# bundle's mask cleanup (clean_masks, the default since: the two largest lung regions kept, holes filled)
python experiments/segmentation_pretrain_vs_scratch.py $E120 --work runs/segmentation_e120 --fractions 0.1 --seeds 1 \
    --inits gmml --no-clean-masks --out ${R}_e120/f10_s1
python experiments/segmentation_pretrain_vs_scratch.py $E120 --work runs/segmentation_e120 --fractions 0.1 --seeds 2 \
    --inits gmml --no-clean-masks --out ${R}_e120/f10_s2
python experiments/segmentation_pretrain_vs_scratch.py $E120 --out ${R}_e120 --summarise ${R}_e120/f10_*/runs.csv
python experiments/segmentation_pretrain_vs_scratch.py $E120 --work runs/segmentation_e120_clean --fractions 0.1 \
    --seeds 0 --inits gmml --out ${R}_e120_clean/f10_s0
# 1% and 100% of the masks with the default encoder, seed 0, raw masks as the rows above (the same session)
python experiments/segmentation_pretrain_vs_scratch.py $E120 --work runs/segmentation_e120 --fractions 0.01 --seeds 0 \
    --inits gmml --no-clean-masks --out ${R}_e120/f1_s0
python experiments/segmentation_pretrain_vs_scratch.py $E120 --work runs/segmentation_e120 --fractions 1.0 --seeds 0 \
    --inits gmml --no-clean-masks --epochs 2 --out ${R}_e120/f100_s0
python experiments/segmentation_pretrain_vs_scratch.py $E120 --out ${R}_e120 --summarise ${R}_e120/f*/runs.csv
# More seeds with the default encoder (the session after; raw masks as the rows above): 1% of the masks seeds 1 and 2
# beside the classification study, then 100% seed 1 alone with 2 threads
E120_RAW="python experiments/segmentation_pretrain_vs_scratch.py $E120 --work runs/segmentation_e120 --inits gmml --no-clean-masks"
for seed in 1 2; do $E120_RAW --fractions 0.01 --seeds $seed --out ${R}_e120/f1_s$seed; done
OMP_NUM_THREADS=2 $E120_RAW --fractions 1.0 --seeds 1 --epochs 2 --out ${R}_e120/f100_s1
python experiments/segmentation_pretrain_vs_scratch.py $E120 --out ${R}_e120 --summarise ${R}_e120/f*/runs.csv
# Encoder v2 (gmml-vit-tiny16-cxr128-v2), 10% of the masks, 3 seeds, raw masks as e120's 3-seed rows (the session
# after v2's release; 1 thread, beside the classification study, frozen copy, --data ../shared/data)
V2_RAW="python experiments/segmentation_pretrain_vs_scratch.py --pretrained gmml-vit-tiny16-cxr128-v2 --work runs/segmentation_v2 --inits gmml --no-clean-masks"
for seed in 0 1 2; do $V2_RAW --fractions 0.1 --seeds $seed --out ${R}_v2/f10_s$seed; done
python experiments/segmentation_pretrain_vs_scratch.py --pretrained gmml-vit-tiny16-cxr128-v2 --out ${R}_v2 \
    --summarise ${R}_v2/f10_*/runs.csv
# Metrics at the masks' own size (issue #29; the bundle's evaluate.json now adds native_mean_dice / native_hd95:
# probabilities resized smoothly to 256 px, argmax and cleanup there, against the mask files untouched):
# encoder v2, 10% of the masks, seed 0, masks cleaned (the default); 1 thread beside the stage-7 pretraining
python experiments/segmentation_pretrain_vs_scratch.py --pretrained gmml-vit-tiny16-cxr128-v2 --work runs/segmentation_native \
    --inits gmml --fractions 0.1 --seeds 0 --out ${R}_native/f10_s0
python experiments/segmentation_pretrain_vs_scratch.py --pretrained gmml-vit-tiny16-cxr128-v2 --out ${R}_native \
    --summarise ${R}_native/f10_s0/runs.csv
# Toward Dice 0.945 (issue #29, the session after): UNETR's feature size 32 (16 before), otherwise the row above
# (encoder v2, 10% of the masks, seed 0, masks cleaned); 1 thread beside the stage-8 pretraining
python experiments/segmentation_pretrain_vs_scratch.py --pretrained gmml-vit-tiny16-cxr128-v2 --work runs/segmentation_fs32 \
    --inits gmml --fractions 0.1 --seeds 0 --feature-size 32 --out ${R}_fs32/f10_s0
python experiments/segmentation_pretrain_vs_scratch.py --pretrained gmml-vit-tiny16-cxr128-v2 --feature-size 32 \
    --out ${R}_fs32 --summarise ${R}_fs32/f10_s0/runs.csv
# The encoder pretrained further (issue #29, the session after): stage 8 (~1.40 M image-steps, not released; restored
# with `git checkout cc63520 -- experiments/release/stages/stage8.pt.xz experiments/release/stages/stage8.json` and
# `python experiments/release/stage_state.py restore experiments/release/stages/stage8 runs/stage8.pt`), 10% of the masks,
# seed 0, masks cleaned, feature size 16 then 32 (1 thread beside the stage-9 pretraining)
for fs in 16 32; do
    python experiments/segmentation_pretrain_vs_scratch.py --pretrained runs/stage8.pt --work runs/segmentation_stage8_fs$fs \
        --inits gmml --fractions 0.1 --seeds 0 --feature-size $fs --out ${R}_stage8/f10_s0$([ $fs = 32 ] && echo _fs32)
done
# Stage 9 (~1.51 M image-steps; restored as stage 8 above, from experiments/release/stages/stage9), feature size 16,
# otherwise the same row (1 thread, the same session's end)
python experiments/segmentation_pretrain_vs_scratch.py --pretrained runs/stage9.pt --work runs/segmentation_stage9_fs16 \
    --inits gmml --fractions 0.1 --seeds 0 --out ${R}_stage9/f10_s0
# Encoders v3 and v4, feature size 32 (the bundle's default since 0.2.0), 10% of the masks, seeds 0-2, one thread each
# beside the stage-10 / 11 pretraining: the 0.945 target's test (v3 0.945, v4 0.946). runs/stage9.pt restored as above
# (v3 is its fp16 copy); runs/stage10.pt by `python experiments/release/stage_state.py restore
# experiments/release/stages/stage10 runs/stage10.pt` with its file from c60a3aa (docs/releases.md; v4 is its fp16 copy)
for encoder in stage9:v3 stage10:v4; do
    checkpoint=runs/${encoder%%:*}.pt release=${encoder##*:}
    for seed in 0 1 2; do
        python experiments/segmentation_pretrain_vs_scratch.py --pretrained $checkpoint --work runs/segmentation_${release}_fs32 \
            --inits gmml --fractions 0.1 --seeds $seed --feature-size 32 --out ${R}_${release}/f10_s${seed}_fs32
    done
    python experiments/segmentation_pretrain_vs_scratch.py --pretrained $checkpoint --feature-size 32 --out ${R}_${release} \
        --summarise ${R}_${release}/f10_s*_fs32/runs.csv
done
# A release by name (its fp16 weights, as the bundle reads them), the same row, seeds 0-2, one thread beside a stage's
# pretraining (frozen worktree):
# - v5 (beside stage 17): Dice 0.948 ± 0.001 (v4 0.946), each seed above v4's, HD95 3.6 px, at 256 px 0.946 / 7.2 px
# - v6 (beside stage 18): Dice 0.950 ± 0.001 (v5 0.948), each seed above v5's, HD95 3.4 px, at 256 px 0.948 / 6.9 px
# - v7 (seed 1 beside stage 19's end, seeds 0 and 2 on the other thread): Dice 0.950 ± 0.001 (v6 0.950; each seed
#   +0.0003 to +0.0007), HD95 3.4 px, at 256 px 0.948 / 6.9 px: level with v6
# - v8 (seed 0 beside stage 20's end, seeds 1 and 2 side by side after it): Dice 0.951 ± 0.001 (v7 0.950; each seed
#   +0.0002 to +0.0006), HD95 3.4 px, at 256 px 0.948 / 6.8 px: level with v7
for release in v5 v6 v7 v8; do
    for seed in 0 1 2; do
        python experiments/segmentation_pretrain_vs_scratch.py --pretrained gmml-vit-tiny16-cxr128-$release \
            --work runs/segmentation_${release}_fs32 --inits gmml --fractions 0.1 --seeds $seed --feature-size 32 \
            --out ${R}_$release/f10_s${seed}_fs32
    done
    python experiments/segmentation_pretrain_vs_scratch.py --pretrained gmml-vit-tiny16-cxr128-$release --feature-size 32 \
        --out ${R}_$release --summarise ${R}_$release/f10_s*_fs32/runs.csv
done
