#!/usr/bin/env bash
# Stage 3 of the released encoder on a lent GPU, in one call of the device tool (a bare machine, 10 minutes a
# command): the GPU benchmark's bf16 rows not measured there yet (ViT-S/16 and ViT-B/16 at 224 px: bare ViT and
# the GMML step with masks from the loader), then pretrain_released_encoder.sh 3 with as many epochs as fit
# before a deadline. What it needs travels with the repository, beside it in ignored folders:
#   .whl/       monai, pytorch-ignite, fire, termcolor, pydicom, nibabel (its tests zip -d-ed: 64 MiB) wheels
#   .gpu_data/  the 3,728 COVID-QU-Ex train images at 128 px, lossless WebP (64 MiB travel with the repo):
#       python experiments/release/resized_copy.py ../shared/data/covid-qu-ex/train .gpu_data/covid-qu-ex/train --webp
# Usage (repo root): bash experiments/release/gpu_stage3.sh OUT_DIR [SECONDS_FOR_TRAINING] [PEAK_TFLOPS]
# OUT_DIR receives the stage's weights (fp16 state dicts, as the release stores them), its logs and the benchmark.
set -uo pipefail
out=${1:?output folder}
budget=${2:-330}   # seconds from this script's start by which training must have ended
peak=${3:-989}     # H100 SXM dense bf16 (datasheet)
start=$SECONDS
mkdir -p "$out"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore PYTHON=${PYTHON:-python3}
export SPCXR_DATA=/tmp/data SPCXR_RUNS=/tmp/runs
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
"$PYTHON" -c "import torch, monai; print('torch', torch.__version__, 'monai', monai.__version__, torch.cuda.is_available())"
"$PYTHON" experiments/release/resized_copy.py --from-webp .gpu_data "$SPCXR_DATA" || exit 1

# The benchmark first (a fixed cost); the training then takes what is left of the budget
for model in small base; do
    timeout 60 "$PYTHON" benchmarks/pretrain_step.py --device cuda --image-size 224 --model-size "$model" --batch-size 128 \
        --steps 20 --recipes vit gmml-loader --modes bf16 --peak-tflops "$peak" 2>&1
done | tee "$out/bench_bf16_224.md"

epoch_seconds() {  # the slowest trainer epoch after the first in a run's log (the first carries start-up)
    grep -o 'SupervisedTrainer - INFO - Epoch\[[0-9]*\] Complete. Time taken: [0-9:.]*' "$1" | tail -n +2 \
        | awk -F'Time taken: ' '{split($2, t, ":"); s = t[1] * 3600 + t[2] * 60 + t[3]; if (s > m) m = s} END {print m}'
}
# Calibration: 3 epochs (one k-NN probe) in a scratch folder, for the epoch time on this machine
SPCXR_RUNS=/tmp/calibration bash experiments/release/pretrain_released_encoder.sh 3 3 >"$out/calibration.log" 2>&1
per_epoch=$(epoch_seconds "$out/calibration.log")
left=$((budget - (SECONDS - start) - 25))  # 25 s: start-up and caching before the first epoch
epochs=$("$PYTHON" -c "import sys; print(max(0, int($left / (1.1 * float(sys.argv[1] or 'inf')))))" "${per_epoch:-}")
echo "calibration: ${per_epoch:-?} s per epoch; $left s left: $epochs epochs"
if [ "$epochs" -ge 4 ]; then
    run=$SPCXR_RUNS/gmml_stage3
    mkdir -p "$run"
    bash experiments/release/pretrain_released_encoder.sh 3 "$epochs" >"$run/train.log" 2>&1
    echo "stage 3: exit $? after $((SECONDS - start)) s | $(grep -o 'Epoch\[[0-9]*\] Metrics -- val_masked_l1: [0-9.]*' "$run/train.log" | tail -1)"
    # The weights as the release stores them (fp16 state dicts: each file under the 16 MiB a file that comes back)
    "$PYTHON" - "$run/models" "$out" <<'EOF'
import sys, torch
from spcxr_monai.networks.transfer import checkpoint_state
for name in ("model.pt", "model_probe.pt", "model_final.pt"):
    try:
        state = checkpoint_state(f"{sys.argv[1]}/{name}")
    except (FileNotFoundError, ValueError) as e:
        print(f"{name}: {e}")
        continue
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, f"{sys.argv[2]}/fp16_{name}")
EOF
    # Logs under the 16 MiB too: TensorBoard's scalars alone (its images are the figures again) and the figures of
    # epoch 1, every 10th, the last and the one with the lowest validation masked L1 (300 KB each)
    "$PYTHON" - "$run" "$out/logs" <<'EOF'
import shutil, sys
from pathlib import Path
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter
run, dst = Path(sys.argv[1]), Path(sys.argv[2]) / "gmml_stage3"
acc = EventAccumulator(str(run / "logs" / "tensorboard"), size_guidance={"scalars": 0})
acc.Reload()
with SummaryWriter(dst / "logs" / "tensorboard") as writer:
    for tag in acc.Tags()["scalars"]:
        for e in acc.Scalars(tag):
            writer.add_scalar(tag, e.value, e.step, walltime=e.wall_time)
val = acc.Scalars("val_masked_l1")
keep = {1, val[-1].step, min(val, key=lambda e: e.value).step} | {e.step for e in val if e.step % 10 == 0}
(dst / "logs" / "figures").mkdir(parents=True)
(dst / "models").mkdir()
for epoch in keep:
    figure = run / "logs" / "figures" / f"reconstruction_epoch{epoch:03d}.png"
    if figure.is_file():
        shutil.copy2(figure, dst / "logs" / "figures")
for name in ("models/feature_probe.json", "train.log"):
    shutil.copy2(run / name, dst / name)
EOF
    tar -czf "$out/stage3_logs.tar.gz" -C "$out/logs" gmml_stage3 && rm -rf "${out:?}/logs"
fi
echo "done after $((SECONDS - start)) s"
