#!/usr/bin/env bash
# One lent-GPU session's checks, in one call (the device tool's machines are bare and time-limited):
#   1. benchmarks/pretrain_step.py on CUDA: bare ViT vs GMML step, eager fp32 / fused fp32 / bf16,
#      ViT-S/16 and ViT-B/16 at 224 px, with model FLOPs utilisation against the card's dense bf16 peak;
#   2. the pretraining bundle's default run on the GPU (amp "auto" -> bf16 on CUDA), the same with masks drawn in
#      the loader's workers (mask_in_loader), and the three bundles'
#      multi_gpu_train.json under torchrun with NCCL (one process: the only GPU there is).
# Usage (repo root, CUDA machine with torch; monai etc. from wheels in .whl when missing):
#   bash benchmarks/gpu_check.sh OUT_DIR [PEAK_TFLOPS]      (BENCH_MODELS= skips part 1)
set -uo pipefail
out=${1:?output folder}
peak=${2:-989}  # H100 SXM dense bf16 (datasheet)
mkdir -p "$out"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site:$PWD || exit 1
fi
export PYTHONPATH=${PYTHONPATH:-}:$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch, monai; print('torch', torch.__version__, 'monai', monai.__version__, torch.cuda.get_device_name())"
python3 -c "from spcxr_monai.utils import resolve_amp_dtype as r; print('amp auto on cuda ->', r('auto', 'cuda'))"

for model in ${BENCH_MODELS-small base}; do
    python3 benchmarks/pretrain_step.py --device cuda --image-size 224 --model-size "$model" --batch-size 128 \
        --steps 20 --recipes vit gmml gmml-loader --modes eager-fp32 fp32 bf16 --peak-tflops "$peak" 2>&1 | tee "$out/bench_$model.md"
done

run_bundle() {  # name, log, args...
    local name=$1 log=$2
    shift 2
    (cd "bundles/$name" && timeout 240 "$@") >"$out/$log" 2>&1
    echo "$name $log: exit $? | $(grep -Eo 'Epoch\[[0-9]+\] Metrics -- .*' "$out/$log" | tail -1)"
}
if ! python3 -c "import fire" 2>/dev/null; then  # itk is needed only for MHA / NRRD files, not the sample's PNGs
    echo "bundle runs skipped: fire missing here (monai.bundle's command line needs it; carry its wheel in .whl)"
    exit 0
fi
work=/tmp/gpu_runs
run_bundle spcxr_gmml_pretrain pretrain_default.log python3 -m monai.bundle run training \
    --config_file configs/train.json --bundle_root $work/pretrain --epochs 2
run_bundle spcxr_gmml_pretrain pretrain_mask_in_loader.log python3 -m monai.bundle run training \
    --config_file configs/train.json --bundle_root $work/pretrain_loader --epochs 2 --mask_in_loader true --num_workers 4
for name in spcxr_gmml_pretrain spcxr_cxr_classification spcxr_lung_segmentation; do
    run_bundle "$name" "ddp_$name.log" python3 -m torch.distributed.run --standalone --nproc_per_node=1 \
        -m monai.bundle run training --config_file "['configs/train.json','configs/multi_gpu_train.json']" \
        --bundle_root "$work/ddp_$name" --epochs 1 --image_size 128
done
grep -h -iE "bf16|bfloat16|autocast|nccl|Traceback|Error" "$out"/*.log | sort | uniq -c | head -20
ls -la $work/*/models 2>/dev/null | head -30
