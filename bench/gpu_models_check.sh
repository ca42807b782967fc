#!/bin/bash
# The networks on a GPU, in one short run (for a lent device): builds tests_gpu and pneumo for sm_90 unless a
# build folder is given, runs the model GPU tests (float32 and bfloat16 against the CPU) and times forward +
# backward of each full network at 256x256, batch 2, float32 and bfloat16. Everything goes to OUTDIR.
# usage: bench/gpu_models_check.sh OUTDIR [build-dir]
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:?usage: bench/gpu_models_check.sh OUTDIR [build-dir]}"
build="${2:-$here/build-nets-gpu}"
mkdir -p "$out"
export OMP_WAIT_POLICY=passive
if [ ! -x "$build/tests/tests_gpu" ]; then
  cmake -S "$here" -B "$build" -G Ninja -DPNEUMO_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 > "$out/configure.txt" 2>&1
  ninja -C "$build" -j "$(nproc)" tests_gpu pneumo > "$out/build.txt" 2>&1 || { tail -40 "$out/build.txt"; exit 1; }
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1
"$build/tests/tests_gpu" --gtest_filter='ModelsGpu.*' 2>&1 | tee "$out/models_gpu_test.txt" | grep -E "^\[|seg "
for dt in f32 bf16; do
  "$build/pneumo" bench-models --device cuda --dtype "$dt" --size 256 --batch 2 --iters 5 2>&1 | tee "$out/bench_cuda_$dt.txt"
done
