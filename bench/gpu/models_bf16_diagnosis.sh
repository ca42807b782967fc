#!/usr/bin/env bash
# Where does the bf16 network-gradient error on the GPU come from? On the H200 (2026-11-27) bf16 gradients
# were 2-4x further from float32 than bf16 storage alone explains (bench/reports/2026-12-03-model-precision.md).
# This runs, in one go on the device:
#   1. the bf16 network tests as they are, with PNEUMO_CUDNN_LOG=1: which cuDNN algorithms were chosen;
#   2. the same tests with PNEUMO_CUDNN_ALGOS=no-transform (no FFT/Winograd): their share of the gap;
#   3. the PyTorch storage-only emulation of the same networks (bench/model_precision_torch.py), if time is left.
# The per-kind split of the parameter-gradient error (weights / SE / BN+bias) is printed by the tests.
#   usage: bench/gpu/models_bf16_diagnosis.sh BUILD_DIR   (gpu-check passes PNEUMO_TIME_LEFT_S)
set -uo pipefail
cd "$(dirname "$0")/../.."
build="${1:-${PNEUMO_BUILD_DIR:-build-gpu}}"
left="${PNEUMO_TIME_LEFT_S:-300}"
tests="$build/tests/tests_gpu"
[ -x "$tests" ] || { echo "no $tests"; exit 1; }
filter='ModelsGpu.TinyNetworksBFloat16:ModelsGpu.FullNetworksBFloat16'
start=$(date +%s)

echo "## 1. default algorithms"
PNEUMO_CUDNN_LOG=1 "$tests" --gtest_filter="$filter" > /tmp/pneumo-bf16-default.log 2>&1
grep -E 'bfloat16 eval|second draw|^\[  (FAILED|     OK) \]' /tmp/pneumo-bf16-default.log
echo "cuDNN choices (bf16): $(grep -c 'conv2d .* bfloat16' /tmp/pneumo-bf16-default.log) shapes x directions," \
  "$(grep -c 'bfloat16.*FFT/Winograd' /tmp/pneumo-bf16-default.log) of them FFT/Winograd:"
grep 'bfloat16.*FFT/Winograd' /tmp/pneumo-bf16-default.log | sed 's/^pneumo: //' | sort | uniq -c | sort -rn | head -20

echo
echo "## 2. PNEUMO_CUDNN_ALGOS=no-transform"
PNEUMO_CUDNN_ALGOS=no-transform "$tests" --gtest_filter="$filter" 2>&1 |
  grep -E 'bfloat16 eval|second draw|^\[  (FAILED|     OK) \]'

echo
echo "## 3. PyTorch, bf16 storage emulated (CPU), one seed"
# gpu-check gives each bench/gpu script at most 150 s; what is left of that goes to PyTorch.
cap=$(( left < 150 ? left : 150 ))
remaining=$(( cap - ($(date +%s) - start) - 10 ))
if [ "$remaining" -gt 60 ]; then
  PNEUMO_TORCH_THREADS="$(nproc)" timeout "$remaining" python3 bench/model_precision_torch.py --seeds 1 \
    tiny_unet_se tiny_unet_ef tiny_deeplab_se tiny_cls_ef unet_se50 unet_ef3 2>&1 | grep -v 'bf16 / f64'
else
  echo "skipped: ${remaining} s left"
fi
