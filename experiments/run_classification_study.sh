#!/usr/bin/env bash
# The classification study behind experiments/results/summary.md, in the order it was run.
# Each step is resumable by hand (one output folder per step). One torch thread per job: two jobs share
# the 2 cores of the machine that measured it (with 2 threads each they ran 7-14x slower).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
STUDY="python experiments/pretrain_vs_scratch.py --work runs/study"
R=experiments/results

# 1. Tuning, the same effort for each model: two recipes each at 10% labels, seed 0, the one with the
#    better *internal* validation AUC (the bundle's 20% split of covid-qu-ex/train) is kept.
$STUDY --fractions 0.1 --seeds 0 --min-steps 300 --recipes scratch:5e-4:0.75 scratch:5e-4:1 --out $R/classification_sweep/vit_scratch
$STUDY --fractions 0.1 --seeds 0 --min-steps 300 --recipes resnet18:1e-3:1 resnet18:3e-3:1 --out $R/classification_sweep/resnet18
$STUDY --fractions 0.1 --seeds 0 --min-steps 300 --recipes gmml:5e-4:0.75 gmml:5e-4:1 --out $R/classification_sweep/gmml

# 2. The chosen recipes (the script's defaults): 100% labels (10 epochs, ~930 steps), 10% labels with
#    the two other seeds (seed 0 is the sweep's run), 1% labels (one seed so far). Baselines and GMML apart
#    because the GMML rows wait for the released encoder.
B="scratch:5e-4:0.75 resnet18:1e-3:1"
G="gmml:5e-4:0.75"
$STUDY --fractions 1.0 --seeds 0 --epochs 10 --recipes $B --out $R/classification_runs/f100_s0_baselines
$STUDY --fractions 0.1 --seeds 1 2 --min-steps 300 --recipes $B --out $R/classification_runs/f10_s12_baselines
$STUDY --fractions 0.01 --seeds 0 --min-steps 300 --recipes $B --out $R/classification_runs/f1_s0_baselines
$STUDY --fractions 1.0 --seeds 0 --epochs 10 --recipes $G --out $R/classification_runs/f100_s0_gmml
$STUDY --fractions 0.1 --seeds 1 2 --min-steps 300 --recipes $G --out $R/classification_runs/f10_s12_gmml
$STUDY --fractions 0.01 --seeds 0 --min-steps 300 --recipes $G --out $R/classification_runs/f1_s0_gmml

# 3. More seeds (the next session, with the study script's resume=False): 1% labels seeds 1 and 2 for every
#    recipe, 100% labels seed 1 (seed 2 did not fit in the session).
$STUDY --fractions 0.01 --seeds 1 --min-steps 300 --recipes $G --out $R/classification_runs/f1_s1_gmml
$STUDY --fractions 0.01 --seeds 1 --min-steps 300 --recipes $B --out $R/classification_runs/f1_s1_baselines
$STUDY --fractions 0.01 --seeds 2 --min-steps 300 --recipes $G $B --out $R/classification_runs/f1_s2_all
$STUDY --fractions 1.0 --seeds 1 --epochs 10 --recipes $G $B --out $R/classification_runs/f100_s12_all
# 100% labels seed 2 (the session after; with --data ../shared/data, from a frozen copy of the repository)
$STUDY --fractions 1.0 --seeds 2 --epochs 10 --recipes $G $B --out $R/classification_runs/f100_s2_all

# 4. The bundle's default schedule at 100% labels: 30 epochs instead of 10 (the 10-epoch runs still improved
#    at their last epochs), the same recipes, kept apart from the 10-epoch table (the session after; run as
#    two 1-thread jobs side by side, from a frozen copy of the repository, --data ../shared/data).
L="python experiments/pretrain_vs_scratch.py --work runs/study_long --fractions 1.0 --epochs 30"
LR=$R/classification_long
$L --seeds 0 --recipes $G --out $LR/f100_s0_gmml            # beside the next line
$L --seeds 0 --recipes resnet18:1e-3:1 --out $LR/f100_s0_resnet18
$L --seeds 0 --recipes scratch:5e-4:0.75 --out $LR/f100_s0_scratch   # beside the next line
$L --seeds 1 --recipes $G --out $LR/f100_s1_gmml
# Is GMML's 100% gap a fine-tuning recipe left untuned at 100% labels? Seed 0, a higher head lr and a weaker layer
# decay (the fine-tune underfits: training loss 0.24 at its end vs the ResNet-18's 0.07), side by side
$L --seeds 0 --recipes gmml:1e-3:0.75 --out $LR/f100_s0_gmml_1e-3
$L --seeds 0 --recipes gmml:5e-4:0.9 --out $LR/f100_s0_gmml_ld0.9
python experiments/pretrain_vs_scratch.py --recipes $G gmml:1e-3:0.75 gmml:5e-4:0.9 $B --out $LR \
    --summarise $LR/f100_*/runs.csv

# 5. One table from all runs of the chosen recipes (10 epochs at 100% labels).
python experiments/pretrain_vs_scratch.py --recipes $G $B --out $R \
    --summarise $R/classification_sweep/*/runs.csv $R/classification_runs/*/runs.csv

# 6. Does fine-tuning resolution close GMML's 100% gap? 192 px (12 x 12 tokens; position embeddings resized
#    from the encoder's 8 x 8), 10 epochs, seed 0, against the 10-epoch 128 px rows of step 5 (side by side).
H="python experiments/pretrain_vs_scratch.py --work runs/study_res192 --image-size 192 --fractions 1.0 --epochs 10 --seeds 0"
$H --recipes $G --out $R/classification_res192/f100_s0_gmml
$H --recipes scratch:5e-4:0.75 --out $R/classification_res192/f100_s0_scratch
python experiments/pretrain_vs_scratch.py --image-size 192 --recipes $G scratch:5e-4:0.75 --out $R/classification_res192 \
    --summarise $R/classification_res192/f100_*/runs.csv

# 7. Does longer pretraining help? The release's stage 2 (40 more epochs, a warm restart from the 60th epoch's
#    weights; released as gmml-vit-tiny16-cxr128-e100, the epoch with the lowest validation masked L1) with
#    the same fine-tuning recipe and seeds as the rows above; two 1-thread jobs side by side, frozen copy.
E="gmml@gmml-vit-tiny16-cxr128-e100:5e-4:0.75"
$L --seeds 0 --recipes $E --out $LR/f100_s0_gmml_e100            # beside the next two lines
$STUDY --fractions 0.1 --seeds 0 1 2 --min-steps 300 --recipes $E --out $R/classification_e100/f10
$STUDY --fractions 1.0 --seeds 0 1 --epochs 10 --recipes $E --out $R/classification_e100/f100_s01
$STUDY --fractions 1.0 --seeds 2 --epochs 10 --recipes $E --out $R/classification_e100/f100_s2   # beside the next line
$STUDY --fractions 0.01 --seeds 0 1 2 --min-steps 300 --recipes $E --out $R/classification_e100/f1
$L --seeds 1 --recipes $E --out $LR/f100_s1_gmml_e100            # after the line above, beside the segmentation run
python experiments/pretrain_vs_scratch.py --recipes $G gmml:1e-3:0.75 gmml:5e-4:0.9 $E $B --out $LR \
    --summarise $LR/f100_*/runs.csv
python experiments/pretrain_vs_scratch.py --recipes $G $E $B --out $R \
    --summarise $R/classification_sweep/*/runs.csv $R/classification_runs/*/runs.csv $R/classification_e100/*/runs.csv

# 8. Longer still: stage 3 (20 more epochs on a lent H100, a warm restart from e100, batch 64;
#    experiments/release/gpu_stage3.sh), released as gmml-vit-tiny16-cxr128-e120 (the epoch with the lowest
#    validation masked L1, its last). The rows that decide: 100% labels 30 epochs (2 seeds) and 10% (3 seeds);
#    two 1-thread jobs side by side, frozen copy of the working tree, --data ../shared/data.
E120="gmml@gmml-vit-tiny16-cxr128-e120:5e-4:0.75"
$L --seeds 0 --recipes $E120 --out $LR/f100_s0_gmml_e120            # beside the next line
$L --seeds 1 --recipes $E120 --out $LR/f100_s1_gmml_e120
$STUDY --fractions 0.1 --seeds 0 1 2 --min-steps 300 --recipes $E120 --out $R/classification_e120/f10   # beside the segmentation line
$STUDY --fractions 1.0 --seeds 2 --epochs 10 --recipes $E120 --out $R/classification_e120/f100_s2      # beside the next line
$STUDY --fractions 1.0 --seeds 0 1 --epochs 10 --recipes $E120 --out $R/classification_e120/f100_s01   # beside the next line
$STUDY --fractions 0.01 --seeds 0 1 2 --min-steps 300 --recipes $E120 --out $R/classification_e120/f1
python experiments/pretrain_vs_scratch.py --recipes $G gmml:1e-3:0.75 gmml:5e-4:0.9 $E $E120 $B --out $LR \
    --summarise $LR/f100_*/runs.csv
python experiments/pretrain_vs_scratch.py --recipes $G $E $E120 $B --out $R \
    --summarise $R/classification_sweep/*/runs.csv $R/classification_runs/*/runs.csv $R/classification_e1[02]0/*/runs.csv
# 9. The 100% gap again (the session after): does the default encoder fit harder with a higher lr and a weaker
#    layer decay together (each alone moved the first release by +0.007 / +0.011 accuracy)? And a second seed
#    for the 30-epoch baselines, whose rows had one. Two 1-thread jobs side by side, frozen copy, --data ../shared/data.
$L --seeds 0 --recipes gmml@gmml-vit-tiny16-cxr128-e120:1e-3:0.9 --out $LR/f100_s0_gmml_e120_1e-3_ld0.9   # beside the next line
$L --seeds 1 --recipes resnet18:1e-3:1 --out $LR/f100_s1_resnet18
$L --seeds 1 --recipes scratch:5e-4:0.75 --out $LR/f100_s1_scratch
python experiments/pretrain_vs_scratch.py --recipes $G gmml:1e-3:0.75 gmml:5e-4:0.9 $E $E120 \
    gmml@gmml-vit-tiny16-cxr128-e120:1e-3:0.9 $B --out $LR --summarise $LR/f100_*/runs.csv
# 10. Third seeds of the 30-epoch rows at 100% labels (the session after), two 1-thread jobs side by side
#     (e120 then scratch beside ResNet-18 then e100), frozen copy, --data ../shared/data.
$L --seeds 2 --recipes $E120 --out $LR/f100_s2_gmml_e120        # beside the next line
$L --seeds 2 --recipes resnet18:1e-3:1 --out $LR/f100_s2_resnet18
$L --seeds 2 --recipes scratch:5e-4:0.75 --out $LR/f100_s2_scratch   # beside the next line
$L --seeds 2 --recipes $E --out $LR/f100_s2_gmml_e100
python experiments/pretrain_vs_scratch.py --recipes $G gmml:1e-3:0.75 gmml:5e-4:0.9 $E $E120 \
    gmml@gmml-vit-tiny16-cxr128-e120:1e-3:0.9 $B --out $LR --summarise $LR/f100_*/runs.csv
# 11. Stochastic depth (the bundle's new drop_path, 0.1 as BEiT / MAE fine-tuning) with the default encoder at
#     10% labels, where a fine-tune can overfit, 3 seeds, against the drop_path 0 rows of step 8 (after step 10's
#     e100 run, beside its scratch run and the segmentation seeds).
$STUDY --fractions 0.1 --seeds 0 1 2 --min-steps 300 --recipes gmml@gmml-vit-tiny16-cxr128-e120:5e-4:0.75:0.1 \
    --out $R/classification_e120_drop_path/f10
python experiments/pretrain_vs_scratch.py --recipes $E120 gmml@gmml-vit-tiny16-cxr128-e120:5e-4:0.75:0.1 \
    --out $R/classification_e120_drop_path --summarise $R/classification_e120/f10/runs.csv $R/classification_e120_drop_path/f10/runs.csv
# 12. Encoder v2 (release stage 4: a warm restart from e120 on COVID-QU-Ex train + the covid-radiography-pool,
#     12,127 images; experiments/release/pretrain_released_encoder.sh 4), its first rows: 10% labels, 3 seeds,
#     the same recipe as e120's step-8 rows (two 1-thread jobs side by side, frozen copy, --data ../shared/data);
#     the frozen probe beside the third seed.
V2="gmml@gmml-vit-tiny16-cxr128-v2:5e-4:0.75"
$STUDY --fractions 0.1 --seeds 0 2 --min-steps 300 --recipes $V2 --out $R/classification_v2/f10_s02   # beside the next line
$STUDY --fractions 0.1 --seeds 1 --min-steps 300 --recipes $V2 --out $R/classification_v2/f10_s1
python experiments/frozen_probe.py --checkpoints gmml-vit-tiny16-cxr128-e120 gmml-vit-tiny16-cxr128-v2 \
    --out $R/frozen_probe_v2.md
python experiments/pretrain_vs_scratch.py --recipes $E120 $V2 --out $R/classification_v2 \
    --summarise $R/classification_e120/f10/runs.csv $R/classification_v2/f10_*/runs.csv
# 13. Encoder v2's other rows (the session after): 1% labels (3 seeds) and 100% labels 30 epochs (3 seeds), the
#     same recipe as e120's rows; 1-thread jobs from a frozen copy, --data ../shared/data: the 1% seeds then the
#     segmentation seeds (run_segmentation_study.sh) beside the 100% seeds 0 and 1, then seed 2.
$STUDY --fractions 0.01 --seeds 0 1 2 --min-steps 300 --recipes $V2 --out $R/classification_v2/f1
for seed in 0 1 2; do $L --seeds $seed --recipes $V2 --out $LR/f100_s${seed}_gmml_v2; done
python experiments/pretrain_vs_scratch.py --recipes $G gmml:1e-3:0.75 gmml:5e-4:0.9 $E $E120 \
    gmml@gmml-vit-tiny16-cxr128-e120:1e-3:0.9 $V2 $B --out $LR --summarise $LR/f100_*/runs.csv
# 100% labels with 10 epochs for v2 too (the table's other 100% row), 3 seeds, two 1-thread jobs (seeds 0 then 2
# beside seed 1)
for seed in 0 1 2; do $STUDY --fractions 1.0 --seeds $seed --epochs 10 --recipes $V2 --out $R/classification_v2/f100_s$seed; done
python experiments/pretrain_vs_scratch.py --recipes $E120 $V2 --out $R/classification_v2 \
    --summarise $R/classification_e120/f1/runs.csv $R/classification_e120/f10/runs.csv \
    $R/classification_e120/f100_s2/runs.csv $R/classification_e120/f100_s01/runs.csv $R/classification_v2/f*/runs.csv
# 14. Paired evidence (the session of issue #32): encoder v2 and the same ViT from scratch at 10% labels, seed 0, with
#     every image's predictions kept (experiments/results/paired_v2_f10_s0/predictions/): exact McNemar and DeLong
#     in its summary.md; calibration and the screening threshold fitted by the bundle after training
$STUDY --fractions 0.1 --seeds 0 --min-steps 300 --recipes $V2 scratch:5e-4:0.75 --out $R/paired_v2_f10_s0
spcxr compare "$R/paired_v2_f10_s0/predictions/f0.1_s0_gmml@gmml-vit-tiny16-cxr128-v2_5e-4_0.75_covid_val.csv.gz" \
    "$R/paired_v2_f10_s0/predictions/f0.1_s0_scratch_5e-4_0.75_covid_val.csv.gz"
# the ResNet-18 beside them (same subset and seed), then one summary pairing all three
$STUDY --fractions 0.1 --seeds 0 --min-steps 300 --recipes resnet18:1e-3:1 --out $R/paired_cnn_f10_s0
python experiments/pretrain_vs_scratch.py --recipes $V2 scratch:5e-4:0.75 resnet18:1e-3:1 --out $R/paired_v2_f10_s0 \
    --summarise $R/paired_v2_f10_s0/runs.csv $R/paired_cnn_f10_s0/runs.csv
# 15. The scaling table (issue #29): each pretraining stage's encoder at 10% labels, seed 0, the same recipe
#     (stage 5: experiments/release/stages/stage5, restored with stage_state.py; 2 threads, the machine to itself;
#     only the latest stage stays in the tree: stage 5's files come back with
#     git checkout dda014e -- experiments/release/stages/stage5.pt.xz experiments/release/stages/stage5.json)
python experiments/release/stage_state.py restore experiments/release/stages/stage5 runs/stage5_init.pt
python experiments/pretrain_vs_scratch.py --work runs/study_stage5 --pretrained runs/stage5_init.pt --fractions 0.1 \
    --seeds 0 --min-steps 300 --recipes gmml:5e-4:0.75 --out $R/scaling/stage5_f10_s0
spcxr compare $R/scaling/stage5_f10_s0/predictions/f0.1_s0_gmml_5e-4_0.75_covid_val.csv.gz \
    "$R/paired_v2_f10_s0/predictions/f0.1_s0_gmml@gmml-vit-tiny16-cxr128-v2_5e-4_0.75_covid_val.csv.gz"

#     stage 6: a warm restart from stage 5 (SPCXR_RUNS=/work/runs, from a frozen worktree, one thread:
#     STAGE_INIT=runs/stage5_init.pt STAGE_RUN=/work/runs/gmml_stage6 OMP_NUM_THREADS=1 \
#         bash experiments/release/pretrain_released_encoder.sh 5 40 --max_minutes 140), saved with
#     stage_state.py save /work/runs/gmml_stage6/models/model.pt experiments/release/stages/stage6 (its files are in
#     git at f6a1767: git checkout f6a1767 -- experiments/release/stages/stage6.pt.xz experiments/release/stages/stage6.json)
python experiments/release/stage_state.py restore experiments/release/stages/stage6 runs/stage6_init.pt
python experiments/pretrain_vs_scratch.py --work runs/study_stage6 --pretrained runs/stage6_init.pt --fractions 0.1 \
    --seeds 0 --min-steps 300 --recipes gmml:5e-4:0.75 --out $R/scaling/stage6_f10_s0
spcxr compare $R/scaling/stage6_f10_s0/predictions/f0.1_s0_gmml_5e-4_0.75_covid_val.csv.gz \
    "$R/paired_v2_f10_s0/predictions/f0.1_s0_gmml@gmml-vit-tiny16-cxr128-v2_5e-4_0.75_covid_val.csv.gz"
# 16. The anchors' fine-tuning recipe (issue #29), where it is cheap: layer decay 0.65 (EVA-X / medical_mae use
#     0.55; ours 0.75) with encoder v2 at 10% labels, 3 seeds (one thread, beside a pretraining on the other core),
#     against step 12's v2 rows at 0.75
$STUDY --work runs/study_recipe --fractions 0.1 --seeds 0 1 2 --min-steps 300 \
    --recipes gmml@gmml-vit-tiny16-cxr128-v2:5e-4:0.65 --out $R/recipe_v2_ld065/f10
python experiments/pretrain_vs_scratch.py --recipes $V2 gmml@gmml-vit-tiny16-cxr128-v2:5e-4:0.65 \
    --out $R/recipe_v2_ld065 --summarise $R/classification_v2/f10_*/runs.csv $R/recipe_v2_ld065/f10/runs.csv
# and 0.55 (the anchors' own value), then the three side by side
$STUDY --work runs/study_recipe055 --fractions 0.1 --seeds 0 1 2 --min-steps 300 \
    --recipes gmml@gmml-vit-tiny16-cxr128-v2:5e-4:0.55 --out $R/recipe_v2_ld055/f10
python experiments/pretrain_vs_scratch.py --recipes $V2 gmml@gmml-vit-tiny16-cxr128-v2:5e-4:0.65 \
    gmml@gmml-vit-tiny16-cxr128-v2:5e-4:0.55 --out $R/recipe_v2_layer_decay --summarise \
    $R/classification_v2/f10_*/runs.csv $R/recipe_v2_ld065/f10/runs.csv $R/recipe_v2_ld055/f10/runs.csv
# 17. The rest of the anchors' recipe (issue #29, the session after), each with encoder v2 at 10% labels, 3 seeds,
#     against step 12's v2 rows; one thread beside the stage-7 pretraining, frozen worktrees, --data ../shared/data:
#     drop path 0.2; the stronger augmentation (configs/strong_augmentation.json); an EMA of the weights
#     (configs/ema.json); and a longer schedule (60 epochs: --min-steps 600), seed 0 first
$STUDY --work runs/study_recipe --fractions 0.1 --seeds 0 1 2 --min-steps 300 \
    --recipes $V2:0.2 --out $R/recipe_v2_dp02/f10
python experiments/pretrain_vs_scratch.py --recipes $V2 $V2:0.2 --out $R/recipe_v2_dp02 \
    --summarise $R/classification_v2/f10_*/runs.csv $R/recipe_v2_dp02/f10/runs.csv
$STUDY --work runs/study_recipe --fractions 0.1 --seeds 0 1 2 --min-steps 300 \
    --recipes $V2+strongaug --out $R/recipe_v2_strongaug/f10
python experiments/pretrain_vs_scratch.py --recipes $V2 $V2+strongaug --out $R/recipe_v2_strongaug \
    --summarise $R/classification_v2/f10_*/runs.csv $R/recipe_v2_strongaug/f10/runs.csv
$STUDY --work runs/study_recipe --fractions 0.1 --seeds 0 --min-steps 600 --recipes $V2 --out $R/recipe_v2_e60/f10_s0
# the EMA on seed 0 only (level with the raw weights; its seeds 1 and 2 gave way to the 60-epoch seeds)
$STUDY --work runs/study_recipe --fractions 0.1 --seeds 0 --min-steps 300 --recipes $V2+ema --out $R/recipe_v2_ema/f10
for seed in 1 2; do
    $STUDY --work runs/study_recipe --fractions 0.1 --seeds $seed --min-steps 600 --recipes $V2 --out $R/recipe_v2_e60/f10_s$seed
done
python experiments/pretrain_vs_scratch.py --recipes $V2 --out $R/recipe_v2_e60 --summarise $R/recipe_v2_e60/f10_s*/runs.csv
# 18. The scaling table's next row (issue #29, the session after): stage 7, a warm restart from stage 6 (one thread,
#     frozen worktree: STAGE_INIT=/work/runs/stage7_init.pt STAGE_RUN=/work/runs/gmml_stage7 SPCXR_RUNS=/work/runs \
#         OMP_NUM_THREADS=1 bash experiments/release/pretrain_released_encoder.sh 5 40 --max_minutes 128), saved with
#     stage_state.py save /work/runs/gmml_stage7/models/model.pt experiments/release/stages/stage7; then the frozen
#     probe of v2 and the two stages (stage 6 restored as above, to runs/stage6.pt)
git checkout 7685cfa -- experiments/release/stages/stage7.pt.xz experiments/release/stages/stage7.json  # out of the tree since stage 8
python experiments/release/stage_state.py restore experiments/release/stages/stage7 runs/stage7.pt
python experiments/pretrain_vs_scratch.py --work runs/study_stage7 --pretrained runs/stage7.pt --fractions 0.1 \
    --seeds 0 --min-steps 300 --recipes gmml:5e-4:0.75 --out $R/scaling/stage7_f10_s0
spcxr compare $R/scaling/stage7_f10_s0/predictions/f0.1_s0_gmml_5e-4_0.75_covid_val.csv.gz \
    "$R/paired_v2_f10_s0/predictions/f0.1_s0_gmml@gmml-vit-tiny16-cxr128-v2_5e-4_0.75_covid_val.csv.gz"
python experiments/frozen_probe.py --checkpoints gmml-vit-tiny16-cxr128-v2 runs/stage6.pt runs/stage7.pt \
    --out $R/frozen_probe_stages.md
# 19. The adopted 60-epoch schedule for the baselines too (the same session's end, seed 0 each, side by side, one thread each)
$STUDY --work runs/study_e60 --fractions 0.1 --seeds 0 --min-steps 600 --recipes scratch:5e-4:0.75 --out $R/recipe_e60_baselines/f10_s0_scratch
$STUDY --work runs/study_e60 --fractions 0.1 --seeds 0 --min-steps 600 --recipes resnet18:1e-3:1 --out $R/recipe_e60_baselines/f10_s0_resnet18
# 20. The frozen probe reads every block (issue #29, the session after): masked-image pretraining leaves a small
#     ViT's most separable features below its last block (TinyMIM); the block is chosen on the internal validation
#     split. Same checkpoints as step 18 (restored as there); one thread beside the stage-8 pretraining
python experiments/frozen_probe.py --checkpoints gmml-vit-tiny16-cxr128-v2 runs/stage6.pt runs/stage7.pt \
    --out $R/frozen_probe_stages.md --blocks-out $R/frozen_probe_blocks.md
# 21. Fine-tuning read at block 8 (the frozen probe's best block of the later stages; blocks 9-12 dropped, layer decay
#     from block 8 down), encoder v2, 10% labels, 60 epochs as the adopted rows, 3 seeds (one thread, frozen worktree)
for seed in 0 1 2; do
    $STUDY --work runs/study_block --fractions 0.1 --seeds $seed --min-steps 600 --recipes "$V2+block8" \
        --out $R/recipe_v2_block8/f10_s$seed
done
python experiments/pretrain_vs_scratch.py --recipes "$V2+block8" --out $R/recipe_v2_block8 --summarise $R/recipe_v2_block8/f10_s*/runs.csv
# 22. The scaling table's next row: stage 8, a warm restart from stage 7 (one thread, frozen worktree:
#     STAGE_INIT=/work/runs/stage8_init.pt STAGE_RUN=/work/runs/gmml_stage8 SPCXR_RUNS=/work/runs \
#         OMP_NUM_THREADS=1 bash experiments/release/pretrain_released_encoder.sh 5 40 --max_minutes 115), saved with
#     stage_state.py save /work/runs/gmml_stage8/models/model.pt experiments/release/stages/stage8; then the frozen
#     probe of v2 and the three stages (stage 6 and 7 restored as in steps 15 and 18)
git checkout cc63520 -- experiments/release/stages/stage8.pt.xz experiments/release/stages/stage8.json  # out of the tree since stage 9
python experiments/release/stage_state.py restore experiments/release/stages/stage8 runs/stage8.pt
python experiments/pretrain_vs_scratch.py --work runs/study_stage8 --pretrained runs/stage8.pt --fractions 0.1 \
    --seeds 0 --min-steps 300 --recipes gmml:5e-4:0.75 --out $R/scaling/stage8_f10_s0
spcxr compare $R/scaling/stage8_f10_s0/predictions/f0.1_s0_gmml_5e-4_0.75_covid_val.csv.gz \
    "$R/paired_v2_f10_s0/predictions/f0.1_s0_gmml@gmml-vit-tiny16-cxr128-v2_5e-4_0.75_covid_val.csv.gz"
python experiments/frozen_probe.py --checkpoints gmml-vit-tiny16-cxr128-v2 runs/stage6.pt runs/stage7.pt runs/stage8.pt \
    --out $R/frozen_probe_stages.md --blocks-out $R/frozen_probe_blocks.md
# 23. Step 19's baselines, seed 1 (the session's end, side by side, one thread each)
$STUDY --work runs/study_e60 --fractions 0.1 --seeds 1 --min-steps 600 --recipes scratch:5e-4:0.75 --out $R/recipe_e60_baselines/f10_s1_scratch
$STUDY --work runs/study_e60 --fractions 0.1 --seeds 1 --min-steps 600 --recipes resnet18:1e-3:1 --out $R/recipe_e60_baselines/f10_s1_resnet18
# 24. The scaling table's next row: stage 9, a warm restart from stage 8 (one thread, frozen worktree:
#     STAGE_INIT=/work/runs/stage9_init.pt STAGE_RUN=/work/runs/gmml_stage9 SPCXR_RUNS=/work/runs \
#         OMP_NUM_THREADS=1 bash experiments/release/pretrain_released_encoder.sh 5 40 --max_minutes 100), saved with
#     stage_state.py save /work/runs/gmml_stage9/models/model.pt experiments/release/stages/stage9; then the frozen
#     probe of v2 and the four stages (stages 6-8 restored as in steps 15, 18 and 22)
python experiments/release/stage_state.py restore experiments/release/stages/stage9 runs/stage9.pt
python experiments/pretrain_vs_scratch.py --work runs/study_stage9 --pretrained runs/stage9.pt --fractions 0.1 \
    --seeds 0 --min-steps 300 --recipes gmml:5e-4:0.75 --out $R/scaling/stage9_f10_s0
spcxr compare $R/scaling/stage9_f10_s0/predictions/f0.1_s0_gmml_5e-4_0.75_covid_val.csv.gz \
    "$R/paired_v2_f10_s0/predictions/f0.1_s0_gmml@gmml-vit-tiny16-cxr128-v2_5e-4_0.75_covid_val.csv.gz"
python experiments/frozen_probe.py --checkpoints gmml-vit-tiny16-cxr128-v2 runs/stage6.pt runs/stage7.pt runs/stage8.pt \
    runs/stage9.pt --out $R/frozen_probe_stages.md --blocks-out $R/frozen_probe_blocks.md
# 25. Step 19's baselines, seed 2 (the session after, one thread, frozen worktree), then the 60-epoch table: both
#     baselines and the adopted pretrained rows (step 17's recipe_v2_e60), 3 seeds each
$STUDY --work runs/study_e60 --fractions 0.1 --seeds 2 --min-steps 600 --recipes scratch:5e-4:0.75 --out $R/recipe_e60_baselines/f10_s2_scratch
$STUDY --work runs/study_e60 --fractions 0.1 --seeds 2 --min-steps 600 --recipes resnet18:1e-3:1 --out $R/recipe_e60_baselines/f10_s2_resnet18
python experiments/pretrain_vs_scratch.py --recipes scratch:5e-4:0.75 resnet18:1e-3:1 "$V2" --out $R/recipe_e60_baselines \
    --summarise $R/recipe_e60_baselines/f10_s*/runs.csv $R/recipe_v2_e60/f10_s*/runs.csv
# 26. Stage 9 at 10% labels, seeds 1 and 2 (the session's end, one thread each, side by side): the 3 seeds a release needs
for seed in 1 2; do
    python experiments/pretrain_vs_scratch.py --work runs/study_stage9 --pretrained runs/stage9.pt --fractions 0.1 \
        --seeds $seed --min-steps 300 --recipes gmml:5e-4:0.75 --out $R/scaling/stage9_f10_s$seed
done
# 27. Stage 9 at 100% labels, 10 epochs, seeds 0-2 (one thread beside the stage-10 pretraining, frozen worktree): with
#     step 26 the rows a release needs; higher internal AUC than v2 over the 3 seeds at 10% and 100%: released as
#     encoder v3 (experiments/release/export_encoder.py, docs/releases.md), the default
for seed in 0 1 2; do
    python experiments/pretrain_vs_scratch.py --work runs/study_stage9 --pretrained runs/stage9.pt --fractions 1.0 \
        --seeds $seed --epochs 10 --recipes gmml:5e-4:0.75 --out $R/scaling/stage9_f100_s$seed
done
# v3 against v2, 3 seeds at 10% and 100% labels, one table (mean ± std as every summary here)
python experiments/pretrain_vs_scratch.py --recipes gmml:5e-4:0.75 "$V2" --out $R/classification_v3 \
    --summarise $R/scaling/stage9_f10_s*/runs.csv $R/scaling/stage9_f100_s*/runs.csv $R/classification_v2/f10_*/runs.csv \
    $R/classification_v2/f100_s*/runs.csv
# 28. v3's 30-epoch rows at 100% labels (the README's table), one seed per session as the second core allows;
#     runs/stage9.pt as restored in step 24 (v3, `--pretrained released`, is its fp16 copy)
for seed in 0 1 2; do
    python experiments/pretrain_vs_scratch.py --work runs/study_long_v3 --pretrained runs/stage9.pt --fractions 1.0 \
        --epochs 30 --seeds $seed --recipes gmml:5e-4:0.75 --out $LR/f100_s${seed}_gmml_v3
done
# 29. The scaling table's next row: stage 10, a warm restart from stage 9 (= v3; one thread, frozen worktree:
#     STAGE_INIT=/work/runs/stage10_init.pt STAGE_RUN=/work/runs/gmml_stage10 SPCXR_RUNS=/work/runs \
#         OMP_NUM_THREADS=1 bash experiments/release/pretrain_released_encoder.sh 5 40 --max_minutes 125), saved with
#     stage_state.py save /work/runs/gmml_stage10/models/model.pt experiments/release/stages/stage10 (a delta from v3)
python experiments/release/stage_state.py restore experiments/release/stages/stage10 runs/stage10.pt
for seed in 0 1 2; do
    python experiments/pretrain_vs_scratch.py --work runs/study_stage10 --pretrained runs/stage10.pt --fractions 0.1 \
        --seeds $seed --min-steps 300 --recipes gmml:5e-4:0.75 --out $R/scaling/stage10_f10_s$seed
done
python experiments/pretrain_vs_scratch.py --recipes gmml:5e-4:0.75 --out $R/scaling/stage10_f10 \
    --summarise $R/scaling/stage10_f10_s*/runs.csv
spcxr compare $R/scaling/stage10_f10_s0/predictions/f0.1_s0_gmml_5e-4_0.75_covid_val.csv.gz \
    $R/scaling/stage9_f10_s0/predictions/f0.1_s0_gmml_5e-4_0.75_covid_val.csv.gz
python experiments/frozen_probe.py --checkpoints runs/stage10.pt --out $R/frozen_probe_stage10.md \
    --blocks-out $R/frozen_probe_blocks_stage10.md
python experiments/pretrain_vs_scratch.py --work runs/study_stage10 --pretrained runs/stage10.pt --fractions 1.0 \
    --seeds 0 --epochs 10 --recipes gmml:5e-4:0.75 --out $R/scaling/stage10_f100_s0
# 30. Stage 10 at 100% labels, 10 epochs, seeds 1-2 (one thread beside the stage-11 pretraining, frozen worktree): with
#     step 29 the rows a release needs; higher internal AUC than v3 at 10% and 100% labels (means over 3 seeds): released
#     as encoder v4 (experiments/release/export_encoder.py, docs/releases.md), the default
#     (runs/stage10.pt as restored in step 29: since v4 its file and v3's weights are in git at c60a3aa)
for seed in 1 2; do
    python experiments/pretrain_vs_scratch.py --work runs/study_stage10 --pretrained runs/stage10.pt --fractions 1.0 \
        --seeds $seed --epochs 10 --recipes gmml:5e-4:0.75 --out $R/scaling/stage10_f100_s$seed
done
python experiments/pretrain_vs_scratch.py --recipes gmml:5e-4:0.75 --pretrained runs/stage10.pt --out $R/scaling/stage10_f100 \
    --summarise $R/scaling/stage10_f100_s*/runs.csv
# 31. The scaling table's next row: stage 11, a warm restart from stage 10 (one thread, frozen worktree at c60a3aa:
#     python experiments/release/stage_state.py restore experiments/release/stages/stage10 /work/runs/stage11_init.pt;
#     STAGE_INIT=/work/runs/stage11_init.pt STAGE_RUN=/work/runs/gmml_stage11 SPCXR_RUNS=/work/runs \
#         OMP_NUM_THREADS=1 bash experiments/release/pretrain_released_encoder.sh 5 40 --max_minutes 130), saved with
#     stage_state.py save /work/runs/gmml_stage11/models/model.pt experiments/release/stages/stage11 (a delta from v4;
#     since stage 12 its file is in git at 13fd1da: git show 13fd1da:experiments/release/stages/stage11.pt.xz > ...)
# A stage after v4 in the scaling table: its committed weights restored, 10% labels with 3 seeds, seed 0 paired
# against v4's (stage 10) on the same val images, the frozen probe (final tokens and every block)
stage_rows() {
    local stage=$1 pt=runs/stage$1.pt
    python experiments/release/stage_state.py restore experiments/release/stages/stage$stage $pt
    for seed in 0 1 2; do
        python experiments/pretrain_vs_scratch.py --work runs/study_stage$stage --pretrained $pt --fractions 0.1 \
            --seeds $seed --min-steps 300 --recipes gmml:5e-4:0.75 --out $R/scaling/stage${stage}_f10_s$seed
    done
    python experiments/pretrain_vs_scratch.py --recipes gmml:5e-4:0.75 --pretrained $pt --out $R/scaling/stage${stage}_f10 \
        --summarise $R/scaling/stage${stage}_f10_s*/runs.csv
    spcxr compare $R/scaling/stage${stage}_f10_s0/predictions/f0.1_s0_gmml_5e-4_0.75_covid_val.csv.gz \
        $R/scaling/stage10_f10_s0/predictions/f0.1_s0_gmml_5e-4_0.75_covid_val.csv.gz
    python experiments/frozen_probe.py --checkpoints $pt --out $R/frozen_probe_stage$stage.md \
        --blocks-out $R/frozen_probe_blocks_stage$stage.md
}
stage_rows 11
# 32. v4's 1% rows (the README's table; the released encoder by name, as v2's step 13)
V4="gmml@gmml-vit-tiny16-cxr128-v4:5e-4:0.75"
$STUDY --fractions 0.01 --seeds 0 1 2 --min-steps 300 --recipes $V4 --out $R/classification_v4/f1
# A release's 30-epoch rows at 100% labels, 3 seeds, from its float32 weights (the release is their fp16 copy),
# summarised with the ResNet-18 and scratch rows (steps 4-10)
release_long_rows() {
    local version=$1 pt=$2
    for seed in 0 1 2; do
        python experiments/pretrain_vs_scratch.py --work runs/study_long_$version --pretrained $pt --fractions 1.0 \
            --epochs 30 --seeds $seed --recipes gmml:5e-4:0.75 --out $LR/f100_s${seed}_gmml_$version
    done
    python experiments/pretrain_vs_scratch.py --recipes gmml:5e-4:0.75 resnet18:1e-3:1 scratch:5e-4:0.75 \
        --pretrained $pt --out $LR/$version \
        --summarise $LR/f100_s*_gmml_$version/runs.csv $LR/f100_s*_resnet18/runs.csv $LR/f100_s*_scratch/runs.csv
}
# 33. v4's 30-epoch rows (the README's table; one thread beside the stage-12 pretraining, frozen worktree);
#     runs/stage10.pt as restored in step 29
release_long_rows v4 runs/stage10.pt
# 34. The scaling table's next row: stage 12, a warm restart from stage 11 (one thread beside step 33, frozen worktree
#     at dce4525: python experiments/release/stage_state.py restore experiments/release/stages/stage11 \
#     /work/runs/stage12_init.pt; STAGE_INIT=/work/runs/stage12_init.pt STAGE_RUN=/work/runs/gmml_stage12 \
#     SPCXR_RUNS=/work/runs OMP_NUM_THREADS=1 bash experiments/release/pretrain_released_encoder.sh 5 40 --max_minutes 130),
#     saved with stage_state.py save /work/runs/gmml_stage12/models/model.pt experiments/release/stages/stage12
#     (a delta from v4; since stage 13 its file is in git at 7efeae2: git show 7efeae2:experiments/release/stages/stage12.pt.xz
#     > ...); its three 10% seeds on the two threads once the pretraining had ended
stage_rows 12
# A stage's 100% rows, 10 epochs, 3 seeds (its weights restored by stage_rows), and their summary
stage_f100_rows() {
    local stage=$1 pt=runs/stage$1.pt
    for seed in 0 1 2; do
        python experiments/pretrain_vs_scratch.py --work runs/study_stage$stage --pretrained $pt --fractions 1.0 \
            --seeds $seed --epochs 10 --recipes gmml:5e-4:0.75 --out $R/scaling/stage${stage}_f100_s$seed
    done
    python experiments/pretrain_vs_scratch.py --recipes gmml:5e-4:0.75 --pretrained $pt --out $R/scaling/stage${stage}_f100 \
        --summarise $R/scaling/stage${stage}_f100_s*/runs.csv
}
# stage 12's 100% rows (seeds 0 and 1 side by side on the two threads; seed 2 the session after, one thread beside
# the stage-13 pretraining): level with v4 on the selection metric (0.9705 vs 0.9708), not released
stage_f100_rows 12
# 35. The anchors' recipe where the targets are still open, at 100% labels (issue #29; one thread beside the stage-13
#     pretraining, frozen worktree): v4 (runs/stage10.pt, as in step 30), 10 epochs, 3 seeds, against step 30's rows
#     with the same seeds: an EMA of the weights (configs/ema.json, decay 0.99: ~100 of 940 steps), then drop path 0.1
for tag in ema dp01; do
    recipe=gmml:5e-4:0.75+ema
    [ $tag = dp01 ] && recipe=gmml:5e-4:0.75:0.1
    for seed in 0 1 2; do
        python experiments/pretrain_vs_scratch.py --work runs/study_recipe_f100 --pretrained runs/stage10.pt --fractions 1.0 \
            --seeds $seed --epochs 10 --recipes $recipe --out $R/recipe_v4_f100_$tag/s$seed
    done
    python experiments/pretrain_vs_scratch.py --recipes gmml:5e-4:0.75 $recipe --pretrained runs/stage10.pt \
        --out $R/recipe_v4_f100_$tag --summarise $R/scaling/stage10_f100_s*/runs.csv $R/recipe_v4_f100_$tag/s*/runs.csv
done
# 36. The scaling table's next row: stage 13, a warm restart from stage 12 (one thread beside step 35, frozen worktree
#     at 6279571: python experiments/release/stage_state.py restore experiments/release/stages/stage12 \
#     /work/runs/stage13_init.pt; STAGE_INIT=/work/runs/stage13_init.pt STAGE_RUN=/work/runs/gmml_stage13 \
#     SPCXR_RUNS=/work/runs OMP_NUM_THREADS=1 bash experiments/release/pretrain_released_encoder.sh 5 40 --max_minutes 130),
#     saved with stage_state.py save /work/runs/gmml_stage13/models/model.pt experiments/release/stages/stage13
#     (a delta from v4; since v5 its file is in git at db84ee0, with v4's weights it is restored onto: git show
#     db84ee0:experiments/release/stages/stage13.pt.xz > ..., and restore_command('gmml-vit-tiny16-cxr128-v4')); its
#     10% seeds two at a time on the two threads once the pretraining had ended
stage_rows 13
# stage 13's 100% rows (seeds 0 and 1 side by side on the two threads, then seed 2 alone with OMP_NUM_THREADS=2):
# 0.9714 vs v4's 0.9708 on the selection metric, a release candidate
stage_f100_rows 13
# 37. Stage 13 released as encoder v5, the default (experiments/release/export_encoder.py, docs/releases.md; since v5
#     its delta from v4 and v4's weights are in git at db84ee0). v5's 30-epoch rows at 100% labels (one thread beside
#     the stage-14 pretraining, frozen worktree; seed 2 beside seed 0, then seed 1); runs/stage13.pt as restored
#     by stage_rows 13
release_long_rows v5 runs/stage13.pt
# 38. v5's 1% rows (the README's table; the released encoder by name, as v4's step 32; one thread beside step 39)
V5="gmml@gmml-vit-tiny16-cxr128-v5:5e-4:0.75"
$STUDY --fractions 0.01 --seeds 0 1 2 --min-steps 300 --recipes $V5 --out $R/classification_v5/f1
# 39. The scaling table's next row: stage 14, a warm restart from stage 13 (one thread beside step 37, frozen worktree
#     at db84ee0: python experiments/release/stage_state.py restore experiments/release/stages/stage13 \
#     /work/runs/stage14_init.pt; STAGE_INIT=/work/runs/stage14_init.pt STAGE_RUN=/work/runs/gmml_stage14 \
#     SPCXR_RUNS=/work/runs OMP_NUM_THREADS=1 bash experiments/release/pretrain_released_encoder.sh 5 40 --max_minutes 140),
#     saved with stage_state.py save /work/runs/gmml_stage14/models/model.pt experiments/release/stages/stage14 (a
#     delta from v5); its 10% seeds once the pretraining had ended (seed 0 alone, then 1 and 2 on the two threads):
#     level with v5 on the selection metric (0.919 vs 0.920), not a release candidate
stage_rows 14
# 40. The anchors' label smoothing (configs/label_smoothing.json, 0.1; DeiT / BEiT / MAE fine-tune with it) on v5
#     (runs/stage13.pt as restored by stage_rows 13), 10% labels, 3 seeds, against stage 13's rows (step 36) with the
#     same seeds (one thread beside the stage-15 pretraining, frozen worktree): lower on the selection metric on every
#     seed (0.915 vs 0.920), not adopted
for seed in 0 1 2; do
    $STUDY --work runs/study_smooth --pretrained runs/stage13.pt --fractions 0.1 --seeds $seed --min-steps 300 \
        --recipes gmml:5e-4:0.75+smooth --out $R/recipe_v5_smooth/f10_s$seed
done
python experiments/pretrain_vs_scratch.py --recipes gmml:5e-4:0.75 gmml:5e-4:0.75+smooth --pretrained runs/stage13.pt \
    --out $R/recipe_v5_smooth --summarise $R/scaling/stage13_f10_s*/runs.csv $R/recipe_v5_smooth/f10_s*/runs.csv
# 41. A lighter layer decay on v5 (0.85; v2's 0.55 / 0.65 / 0.75 was monotone towards the lighter one, step 16), 10%
#     labels, 3 seeds, against the same stage-13 rows (one thread beside the stage-15 pretraining, frozen worktree):
#     higher on the selection metric (0.923 vs 0.920; seeds -0.004 / +0.010 / +0.001), val and pediatric too
for seed in 0 1 2; do
    $STUDY --work runs/study_ld085 --pretrained runs/stage13.pt --fractions 0.1 --seeds $seed --min-steps 300 \
        --recipes gmml:5e-4:0.85 --out $R/recipe_v5_ld085/f10_s$seed
done
python experiments/pretrain_vs_scratch.py --recipes gmml:5e-4:0.75 gmml:5e-4:0.85 --pretrained runs/stage13.pt \
    --out $R/recipe_v5_ld085/f10 --summarise $R/scaling/stage13_f10_s*/runs.csv $R/recipe_v5_ld085/f10_s*/runs.csv
for seed in 0 1 2; do
    spcxr compare $R/recipe_v5_ld085/f10_s$seed/predictions/f0.1_s${seed}_gmml_5e-4_0.85_pediatric.csv.gz \
        $R/scaling/stage13_f10_s$seed/predictions/f0.1_s${seed}_gmml_5e-4_0.75_pediatric.csv.gz
done
# ... and at 100% labels, 10 epochs, 3 seeds, against stage 13's 100% rows (one thread beside the stage-15
# pretraining): higher on the selection metric on every seed (0.9753 vs 0.9714), adopted, then withdrawn by step 42
for seed in 0 1 2; do
    $STUDY --work runs/study_ld085_f100 --pretrained runs/stage13.pt --fractions 1.0 --seeds $seed --epochs 10 \
        --recipes gmml:5e-4:0.85 --out $R/recipe_v5_ld085/f100_s$seed
done
python experiments/pretrain_vs_scratch.py --recipes gmml:5e-4:0.75 gmml:5e-4:0.85 --pretrained runs/stage13.pt \
    --out $R/recipe_v5_ld085/f100 --summarise $R/scaling/stage13_f100_s*/runs.csv $R/recipe_v5_ld085/f100_s*/runs.csv
for seed in 0 1 2; do
    for set in covid_val pediatric; do
        spcxr compare $R/recipe_v5_ld085/f100_s$seed/predictions/f1_s${seed}_gmml_5e-4_0.85_$set.csv.gz \
            $R/scaling/stage13_f100_s$seed/predictions/f1_s${seed}_gmml_5e-4_0.75_$set.csv.gz
    done
done
# 42. Layer decay 0.85's 30-epoch rows at 100% labels (v5; seed 0 beside the stage-15 pretraining, seed 1 after it
#     beside step 44, seed 2 the session after beside the stage-16 pretraining), against v5's, the ResNet-18's and
#     scratch's 30-epoch rows: its 10-epoch lead is gone at 30 epochs (internal AUC 0.9740 vs 0.9731, level within a
#     seed's spread; val 0.879 vs 0.886, pediatric 0.930 vs 0.926), the bundle keeps 0.75
for seed in 0 1 2; do
    python experiments/pretrain_vs_scratch.py --work runs/study_long_ld085 --pretrained runs/stage13.pt --fractions 1.0 \
        --epochs 30 --seeds $seed --recipes gmml:5e-4:0.85 --out $LR/f100_s${seed}_gmml_v5_ld085
done
python experiments/pretrain_vs_scratch.py --recipes gmml:5e-4:0.85 gmml:5e-4:0.75 resnet18:1e-3:1 scratch:5e-4:0.75 \
    --pretrained runs/stage13.pt --out $LR/v5_ld085 --summarise $LR/f100_s*_gmml_v5_ld085/runs.csv \
    $LR/f100_s*_gmml_v5/runs.csv $LR/f100_s*_resnet18/runs.csv $LR/f100_s*_scratch/runs.csv
# 43. The scaling table's next row: stage 15, a warm restart from stage 14 (one thread beside steps 40-42, frozen
#     worktree at c09848b: python experiments/release/stage_state.py restore experiments/release/stages/stage14 \
#     /work/runs/stage15_init.pt; STAGE_INIT=/work/runs/stage15_init.pt STAGE_RUN=/work/runs/gmml_stage15 \
#     SPCXR_RUNS=/work/runs OMP_NUM_THREADS=1 bash experiments/release/pretrain_released_encoder.sh 5 40 --max_minutes 125),
#     saved with stage_state.py save /work/runs/gmml_stage15/models/model.pt experiments/release/stages/stage15 (a
#     delta from v5; since then stage 14's file is in git at 9bbe9d7); its 10% seeds one after another on one thread
#     beside step 42: level with v5 on the selection metric (0.9199 vs 0.9201), val 0.800, not a release candidate
stage_rows 15
# A stage's rows with layer decay 0.85, 3 seeds, against v5's rows with 0.85 (step 41), paired on COVID-QU-Ex val:
# at 10% labels (the study's 300-step floor) or at 100% (10 epochs: the bundle's configs/short_schedule.json)
stage_ld085_rows() {
    local stage=$1 labels=$2 pt=runs/stage$1.pt fraction=1.0 tag=f1 schedule="--epochs 10"
    if [ "$labels" = 10 ]; then fraction=0.1; tag=f0.1; schedule="--min-steps 300"; fi
    local rows=$R/scaling/stage${stage}_ld085_f$labels
    for seed in 0 1 2; do
        $STUDY --work runs/study_stage${stage}_ld085_f$labels --pretrained $pt --fractions $fraction --seeds $seed \
            $schedule --recipes gmml:5e-4:0.85 --out ${rows}_s$seed
    done
    python experiments/pretrain_vs_scratch.py --recipes gmml:5e-4:0.85 --pretrained $pt --out $rows \
        --summarise ${rows}_s*/runs.csv
    for seed in 0 1 2; do
        spcxr compare ${rows}_s$seed/predictions/${tag}_s${seed}_gmml_5e-4_0.85_covid_val.csv.gz \
            $R/recipe_v5_ld085/f${labels}_s$seed/predictions/${tag}_s${seed}_gmml_5e-4_0.85_covid_val.csv.gz
    done
}
# 44. Stage 15 with layer decay 0.85 at 10% labels, 3 seeds (one thread beside step 42), against v5's rows with 0.85
#     (step 41): level on the selection metric (0.922 vs 0.923), val 0.807
stage_ld085_rows 15 10
# 45. Stage 15 with layer decay 0.85 at 100% labels, 10 epochs (the bundle's configs/short_schedule.json), 3 seeds
#     (one thread beside the stage-16 pretraining, frozen worktree), against v5's rows with 0.85 (step 41): level on
#     the selection metric (0.9749 vs 0.9753, one seed of three higher), val 0.898 ± 0.013 (0.892; paired +0.005 /
#     +0.022 / -0.011), pediatric 0.933 (0.939); not a release candidate
stage_ld085_rows 15 100
# 46. Layer decay 0.9 on v5 at 10% labels, 3 seeds (the 0.75 -> 0.85 trend's end; one thread beside the stage-16
#     pretraining, frozen worktree), against the same stage-13 and 0.85 rows: the selection metric back to 0.75's
#     (0.920 vs 0.923 with 0.85, lower on every seed), val 0.790, pediatric 0.915: 0.85 stays the lighter decay
for seed in 0 1 2; do
    $STUDY --work runs/study_ld09 --pretrained runs/stage13.pt --fractions 0.1 --seeds $seed --min-steps 300 \
        --recipes gmml:5e-4:0.9 --out $R/recipe_v5_ld09/f10_s$seed
done
python experiments/pretrain_vs_scratch.py --recipes gmml:5e-4:0.75 gmml:5e-4:0.85 gmml:5e-4:0.9 --pretrained runs/stage13.pt \
    --out $R/recipe_v5_ld09/f10 --summarise $R/scaling/stage13_f10_s*/runs.csv $R/recipe_v5_ld085/f10_s*/runs.csv \
    $R/recipe_v5_ld09/f10_s*/runs.csv
# 47. The scaling table's next row: stage 16, a warm restart from stage 15 (one thread beside steps 42, 45 and 46,
#     frozen worktree at 2fe975f: python experiments/release/stage_state.py restore experiments/release/stages/stage15 \
#     /work/runs/stage16_init.pt; STAGE_INIT=/work/runs/stage16_init.pt STAGE_RUN=/work/runs/gmml_stage16 \
#     SPCXR_RUNS=/work/runs OMP_NUM_THREADS=1 bash experiments/release/pretrain_released_encoder.sh 5 40 --max_minutes 110),
#     saved with stage_state.py save /work/runs/gmml_stage16/models/model.pt experiments/release/stages/stage16 (a
#     delta from v5; since then stage 15's file is in git at 3cc4ceb); its 10% seeds on the two threads once the
#     pretraining had ended (seeds 0 and 1 side by side, then seed 2 beside the frozen probe): below v5 on the
#     selection metric (0.919 vs 0.920), val 0.792, not a release candidate
stage_rows 16
# 48. Stage 16 with layer decay 0.85 at 10% labels, 3 seeds (one thread beside the low-lr restart from stage 16,
#     not kept: stages/stage16_lowlr_restart.md), against v5's rows with 0.85 (step 41): level on the selection
#     metric (0.922 vs 0.923, one seed of three higher), val 0.812 ± 0.005 (v5 0.794; paired +0.023 / +0.024 / +0.008,
#     McNemar p = 0.053 / 0.080 / 0.58), pediatric 0.897 (0.905)
stage_ld085_rows 16 10
# 49. Stage 16 with layer decay 0.85 at 100% labels, 10 epochs (configs/short_schedule.json), 3 seeds (one thread
#     beside the stage-17 pretraining, frozen worktree), against v5's rows with 0.85 (step 41): level on the selection
#     metric (0.9746 vs 0.9753, one seed of three higher), val 0.898 ± 0.011 (v5 0.892; paired +0.010 / +0.009 /
#     0.000, McNemar p = 0.23 / 0.35 / 1), pediatric 0.941 ± 0.007 (0.939): the first row at both 100%-label targets
#     (0.896 / 0.940), in 10 epochs, from an unreleased stage
stage_ld085_rows 16 100
# 50. Stage 16 at 100% labels with the bundle's default schedule (30 epochs, layer decay 0.75; the 100%-label
#     targets' own), seed 0 (one thread beside the stage-17 pretraining, frozen worktree; seed 1 was stopped for
#     stage 17's rows), against v5's seed 0 (step 37): internal AUC 0.978 (0.976), val 0.885 (0.889), pediatric 0.935
#     (0.921)
python experiments/pretrain_vs_scratch.py --work runs/study_long_stage16 --pretrained runs/stage16.pt --fractions 1.0 \
    --epochs 30 --seeds 0 --recipes gmml:5e-4:0.75 --out $LR/f100_s0_gmml_stage16
# 51. The scaling table's next row: stage 17, a warm restart from stage 16 with the whole 40-epoch schedule (one
#     thread beside steps 49 and 50 and the segmentation rows of v5, frozen worktree at cce4a84:
#     python experiments/release/stage_state.py restore experiments/release/stages/stage16 /work/runs/stage17_init.pt;
#     STAGE_INIT=/work/runs/stage17_init.pt STAGE_RUN=/work/runs/gmml_stage17 SPCXR_RUNS=/work/runs OMP_NUM_THREADS=1 \
#     bash experiments/release/pretrain_released_encoder.sh 5 40 --max_minutes 112), saved with stage_state.py save
#     /work/runs/gmml_stage17/models/model.pt experiments/release/stages/stage17 (a delta from v5; since then stage
#     16's file is in git at 3ac6e1f); its 10% seeds on one thread beside its 100% rows: above v5 on the selection
#     metric on every seed (0.926 vs 0.920), val 0.808 ± 0.003, pediatric 0.891; frozen 0.836 at block 11
stage_rows 17
# 52. Stage 17 with layer decay 0.85 at 10% labels, 3 seeds (one thread after its frozen probe, beside its 100%
#     rows), against v5's rows with 0.85 (step 41): above on the selection metric on every seed (0.932 vs 0.923), val
#     0.825 ± 0.010 (v5 0.794; paired +0.038 / +0.019 / +0.035, McNemar p = 0.0007 / 0.082 / 0.0027), pediatric 0.920
#     ± 0.010 (0.905)
stage_ld085_rows 17 10
# 53. Stage 17's 100% rows, 10 epochs, 3 seeds (one thread beside its 10% rows; runs/stage17.pt as restored by
#     stage_rows 17): above v5 on the selection metric on every seed (0.9739 vs 0.9714; seeds 0.9779 / 0.9729 / 0.9708
#     against 0.9755 / 0.9690 / 0.9697), val 0.886 ± 0.005 (0.881), pediatric 0.941 ± 0.001 (0.930): with step 51 the
#     release rule holds at both label fractions, stage 17 is the next release's candidate
stage_f100_rows 17
# 54. Stage 17 with the short schedule (layer decay 0.85, 10 epochs) at 100% labels, 3 seeds (seed 0 beside its 10%
#     rows, seeds 1 and 2 side by side), against v5's rows with 0.85 (step 41): internal AUC 0.9768 (0.9753; every seed
#     higher), val 0.901 ± 0.006 (0.892; paired +0.003 / +0.019 / +0.002, McNemar p = 0.79 / 0.022 / 0.89), pediatric
#     0.939 ± 0.010 (0.939)
stage_ld085_rows 17 100
# 55. Stage 17 released as encoder v6, the default (experiments/release/export_encoder.py, docs/releases.md; since v6
#     its delta from v5 and v5's weights are in git at f9b9aa2). v6's 30-epoch rows at 100% labels (one thread beside
#     the stage-18 pretraining, frozen worktree); runs/stage17.pt as restored by stage_rows 17: internal AUC 0.975 ±
#     0.004 (v5 0.973; seeds 0.9798 / 0.9757 / 0.9689 against 0.9760 / 0.9745 / 0.9688), val 0.888 ± 0.016 (0.886;
#     seed 0 0.866: 65 normal images called pneumonia), pediatric 0.940 ± 0.016 (0.926): the pediatric target (0.940)
#     met on the mean, the val one (0.896) not
release_long_rows v6 runs/stage17.pt
# 56. v6's 1% rows (the README's table; the released encoder by name, as v5's step 38; one thread beside stage 18's
#     10% rows): val 0.617 ± 0.039 (v5 0.625), pediatric 0.635 ± 0.012 (0.606), internal AUC 0.771 (0.766)
V6="gmml@gmml-vit-tiny16-cxr128-v6:5e-4:0.75"
$STUDY --fractions 0.01 --seeds 0 1 2 --min-steps 300 --recipes $V6 --out $R/classification_v6/f1
# 57. The scaling table's next row: stage 18, a warm restart from stage 17 = v6 (one thread beside steps 55 and 56 and
#     v6's segmentation rows, frozen worktree at f9b9aa2: python experiments/release/stage_state.py restore \
#     experiments/release/stages/stage17 /work/runs/stage18_init.pt; STAGE_INIT=/work/runs/stage18_init.pt \
#     STAGE_RUN=/work/runs/gmml_stage18 SPCXR_RUNS=/work/runs OMP_NUM_THREADS=1 bash \
#     experiments/release/pretrain_released_encoder.sh 5 40 --max_minutes 120), saved with stage_state.py save
#     /work/runs/gmml_stage18/models/model.pt experiments/release/stages/stage18 (a delta from v6); its 10% seeds (seeds
#     0 and 1 on one thread, seed 2 on the other beside it): internal AUC 0.930 (v6 0.926; higher on two seeds, level
#     on the third), val 0.803, pediatric 0.906; frozen 0.856 at block 9
stage_rows 18
for seed in 0 1 2; do  # paired with v6's (stage 17's) same seed: -0.008 / -0.014 / +0.009, McNemar p = 0.46 / 0.21 / 0.36
    spcxr compare $R/scaling/stage18_f10_s$seed/predictions/f0.1_s${seed}_gmml_5e-4_0.75_covid_val.csv.gz \
        $R/scaling/stage17_f10_s$seed/predictions/f0.1_s${seed}_gmml_5e-4_0.75_covid_val.csv.gz
done
# 58. Stage 18's 100% rows, 10 epochs (seeds 0 and 1 side by side; seed 2 the session after, one thread beside the
#     stage-19 pretraining): internal AUC 0.9741 ± 0.0027 (v6 0.9739; seeds 0.9771 / 0.9736 / 0.9717 against 0.9779 /
#     0.9729 / 0.9708: higher on two), val 0.892 ± 0.004 (0.886), pediatric 0.945 ± 0.010 (0.941): with step 57 the
#     release rule holds at both label fractions (on the mean), stage 18 is the next release's candidate
stage_f100_rows 18
# 59. Stage 18 released as encoder v7, the default (experiments/release/export_encoder.py, docs/releases.md; since v7
#     its delta from v6 and v6's weights are in git at e97e32e). v7's 30-epoch rows at 100% labels (one thread beside
#     the stage-19 pretraining, frozen worktree); runs/stage18.pt as restored by stage_rows 18: internal AUC 0.974 ±
#     0.003 (v6 0.975; seeds 0.9789 / 0.9731 / 0.9714 against 0.9798 / 0.9757 / 0.9689), val 0.895 ± 0.002 (v6 0.888 ±
#     0.016; seeds 0.893 / 0.896 / 0.896; the ResNet-18 0.896 ± 0.004), pediatric 0.935 ± 0.005 (v6 0.940; seeds 0.928 /
#     0.941 / 0.935): the val target (0.896) missed by 0.001 on the mean, the pediatric one (0.940) by 0.005
release_long_rows v7 runs/stage18.pt
for seed in 0 1 2; do  # paired with v6's same seed, val: +0.027 / -0.003 / -0.003, McNemar p = 0.0066 / 0.77 / 0.80;
    # pediatric: -0.043 / +0.013 / +0.003, p < 0.001 / 0.049 / 0.86
    for set in covid_val pediatric; do
        spcxr compare $LR/f100_s${seed}_gmml_v7/predictions/f1_s${seed}_gmml_5e-4_0.75_$set.csv.gz \
            $LR/f100_s${seed}_gmml_v6/predictions/f1_s${seed}_gmml_5e-4_0.75_$set.csv.gz
    done
done
# 60. The scaling table's next row: stage 19, a warm restart from stage 18 = v7 (one thread beside steps 58-59 and v7's
#     segmentation rows, frozen worktree at c7cad35: python experiments/release/stage_state.py restore \
#     experiments/release/stages/stage18 /work/runs/stage19_init.pt; STAGE_INIT=/work/runs/stage19_init.pt \
#     STAGE_RUN=/work/runs/gmml_stage19 SPCXR_RUNS=/work/runs OMP_NUM_THREADS=1 bash \
#     experiments/release/pretrain_released_encoder.sh 5 40 --max_minutes 125), saved with stage_state.py save
#     /work/runs/gmml_stage19/models/model.pt experiments/release/stages/stage19 (a delta from v7); its 10% seeds (one
#     thread beside v7's 1% rows): internal AUC 0.930 ± 0.004 (v7 0.930: level; seeds 0.934 / 0.932 / 0.926 against
#     0.936 / 0.927 / 0.928), val 0.813 ± 0.007 (0.803; paired +0.017 / +0.022 / -0.009, McNemar p = 0.040 / 0.054 /
#     0.33), pediatric 0.895 ± 0.027 (0.906); frozen 0.867 at block 10 (v7 0.856 at block 9); its 100% rows next
stage_rows 19
for seed in 0 1 2; do
    spcxr compare $R/scaling/stage19_f10_s$seed/predictions/f0.1_s${seed}_gmml_5e-4_0.75_covid_val.csv.gz \
        $R/scaling/stage18_f10_s$seed/predictions/f0.1_s${seed}_gmml_5e-4_0.75_covid_val.csv.gz
done
# 61. v7's 1% rows (the README's table; the released encoder by name, as v6's step 56; one thread beside v7's
#     segmentation seeds): val 0.627 ± 0.043 (v6 0.617), pediatric 0.599 ± 0.054 (0.635), internal AUC 0.768 (0.771):
#     within the spread 29 images give
V7="gmml@gmml-vit-tiny16-cxr128-v7:5e-4:0.75"
$STUDY --fractions 0.01 --seeds 0 1 2 --min-steps 300 --recipes $V7 --out $R/classification_v7/f1
# 62. Stage 19's 100% rows, 10 epochs (seeds 0 and 1 side by side at a session's end, seed 2 the next session beside
#     the stage-20 pretraining): internal AUC 0.9760 ± 0.0024 against v7's 0.9741 (seeds 0.9790 / 0.9755 / 0.9736 vs
#     0.9771 / 0.9736 / 0.9717: higher on every seed), val 0.893 ± 0.007 (v7 0.892; seeds 0.901 / 0.895 / 0.884),
#     pediatric 0.948 ± 0.004 (0.945). With step 60 (10%: 0.9304 vs 0.9301, level) the release rule holds on the mean
stage_f100_rows 19
# 63. v8's 30-epoch rows (the README's table; stage 19's float32 weights, as step 59 used stage 18's; one thread beside
#     the stage-20 pretraining, frozen worktree at d77d6b1 with runs/stage19.pt restored while v7 was in the tree):
#     val 0.897 ± 0.012 (v7 0.895; the ResNet-18 0.896), pediatric 0.948 ± 0.006 (0.935; 0.940), internal AUC 0.975:
#     the issue's 30-epoch targets met on the mean, on val by 0.001
release_long_rows v8 runs/stage19.pt
for seed in 0 1 2; do  # paired with v7's same seed, val: -0.012 / +0.005 / +0.012, McNemar p = 0.24 / 0.50 / 0.090;
    # pediatric: +0.027 / -0.006 / +0.020, p < 0.001 / 0.45 / 0.016
    for set in covid_val pediatric; do
        spcxr compare $LR/f100_s${seed}_gmml_v8/predictions/f1_s${seed}_gmml_5e-4_0.75_$set.csv.gz \
            $LR/f100_s${seed}_gmml_v7/predictions/f1_s${seed}_gmml_5e-4_0.75_$set.csv.gz
    done
done
# 64. The scaling table's next row: stage 20, a warm restart from stage 19 = v8 (one thread beside steps 62-63 and v8's
#     segmentation seed 0, frozen worktree at ef5bd21: python experiments/release/stage_state.py restore \
#     experiments/release/stages/stage19 /work/runs/stage20_init.pt; STAGE_INIT=/work/runs/stage20_init.pt \
#     STAGE_RUN=/work/runs/gmml_stage20 SPCXR_RUNS=/work/runs OMP_NUM_THREADS=1 bash \
#     experiments/release/pretrain_released_encoder.sh 5 40 --max_minutes 125), saved with stage_state.py save
#     /work/runs/gmml_stage20/models/model.pt experiments/release/stages/stage20 (a delta from v8); its 10% seeds (one
#     thread beside v8's segmentation seeds, frozen worktree at ae1daeb): internal AUC 0.932 ± 0.005 (v8 0.930; seeds
#     0.940 / 0.929 / 0.929 against 0.934 / 0.932 / 0.926), val 0.804 ± 0.011 (0.813), pediatric 0.897 ± 0.029 (0.895);
#     its frozen probe (stage_rows' last command, not run yet: frozen_probe_stage20.md is still to come) and its 100%
#     rows (stage_f100_rows 20) next
stage_rows 20
for seed in 0 1 2; do  # paired with stage 19's (v8's) same seed: -0.009 / -0.025 / +0.005, McNemar p = 0.34 / 0.0067 / 0.60
    spcxr compare $R/scaling/stage20_f10_s$seed/predictions/f0.1_s${seed}_gmml_5e-4_0.75_covid_val.csv.gz \
        $R/scaling/stage19_f10_s$seed/predictions/f0.1_s${seed}_gmml_5e-4_0.75_covid_val.csv.gz
done
