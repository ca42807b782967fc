#!/usr/bin/env bash
# Where does the bf16 network-gradient error on the GPU come from? On the H200 (2026-11-27) bf16 parameter
# gradients were 2-4x further from float32 than bf16 storage alone explains
# (bench/reports/2026-12-03-model-precision.md). The hypotheses and what decides between them:
# docs/gpu-status.md. This runs, in one go on the device (about 90 s):
#   1. the bf16 network tests with PNEUMO_CUDNN_LOG=1: the figures per parameter group (weights / SE /
#      BN+bias, worst tensor against the whole gradient's norm) and which cuDNN algorithms were chosen;  [H1]
#   2. the same tests with PNEUMO_CUDNN_ALGOS=no-transform (no FFT/Winograd): their share of the gap;    [H1]
#   3. layer by layer: every layer's GPU-vs-CPU test in bf16 with PNEUMO_TEST_ERROR_REPORT=1, both
#      backends on identical pre-rounded inputs, so a correct bf16 op is off by its output rounding only
#      (relative RMS ~1.1e-3); the layers and directions above 3.3e-3 (3x that) are listed first.   [H2-H4]
#   4. (printed only) the command for the PyTorch storage-only emulation, a CPU computation run off the GPU's
#      time: bench/model_precision_torch.py gives the same per-group figures.
#   usage: bench/gpu/models_bf16_diagnosis.sh BUILD_DIR   (gpu-check passes PNEUMO_TIME_LEFT_S)
set -uo pipefail
cd "$(dirname "$0")/../.."
build="${1:-${PNEUMO_BUILD_DIR:-build-gpu}}"
left="${PNEUMO_TIME_LEFT_S:-300}"
tests="$build/tests/tests_gpu"
[ -x "$tests" ] || { echo "no $tests"; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
filter='ModelsGpu.TinyNetworksBFloat16:ModelsGpu.FullNetworksBFloat16'
start=$(date +%s)
rc=0

echo "## 1. default algorithms"
PNEUMO_REQUIRE_GPU=1 PNEUMO_CUDNN_LOG=1 "$tests" --gtest_filter="$filter" > "$tmp/default.log" 2>&1 || rc=1
grep -E 'bfloat16 eval|worst tensor / |^\[  (FAILED|     OK) \]|GPU test skipped' "$tmp/default.log"
echo "cuDNN choices (bf16): $(grep -c 'conv2d .* bfloat16' "$tmp/default.log") shapes x directions," \
  "$(grep -c 'bfloat16.*FFT/Winograd' "$tmp/default.log") of them FFT/Winograd:"
grep 'bfloat16.*FFT/Winograd' "$tmp/default.log" | sed 's/^pneumo: //' | sort | uniq -c | sort -rn | head -20

echo
echo "## 2. PNEUMO_CUDNN_ALGOS=no-transform"
PNEUMO_REQUIRE_GPU=1 PNEUMO_CUDNN_ALGOS=no-transform "$tests" --gtest_filter="$filter" 2>&1 |
  grep -E 'bfloat16 eval|worst tensor / |^\[  (FAILED|     OK) \]'

echo
echo "## 3. layer by layer: relative L2 error, GPU bf16 vs CPU float32 on identical bf16 inputs"
layers='Layers/ConvGpu.*:BatchNormGpu.*:PoolGpu.*:ResizeGpu.*:ConcatGpu.*:SqueezeExciteGpu.MatchesCpuFloat32AndBfloat16:LossesGpu.MatchCpuFloat32AndBfloat16'
PNEUMO_REQUIRE_GPU=1 PNEUMO_TEST_ERROR_REPORT=1 "$tests" --gtest_filter="$layers" > "$tmp/layers.log" 2>&1
# "LAYERERR test dtype shape out E grad0 E ...": rank each bf16 line by its largest error.
# The shape is printed with spaces ("[2, 64, 64, 32]"), so the errors are found by their labels, not positions.
grep '^LAYERERR .* bfloat16 ' "$tmp/layers.log" | awk '{w=0; for (i=1; i<NF; i++) if ($i=="out" || $i ~ /^grad[0-9]+$/) { v=$(i+1)+0; if (v > w) w=v }
  printf "%s %.2e %s\n", (w > 3.3e-3 ? "EXCESS" : "ok    "), w, $0}' | sort -k2 -g -r | sed 's/LAYERERR //' | head -n 60
echo "($(grep -c '^LAYERERR .* bfloat16 ' "$tmp/layers.log") bf16 comparisons; EXCESS: above 3x the output-rounding error)"

echo
echo "## 4. PyTorch, bf16 storage emulated: a CPU computation, so not run on the GPU's time; on the CPU:"
echo "   /usr/bin/python3 bench/model_precision_torch.py --seeds 1 tiny_unet_se tiny_unet_ef tiny_deeplab_se tiny_cls_ef unet_se50 unet_ef3"
exit $rc
