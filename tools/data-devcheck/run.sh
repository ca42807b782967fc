#!/bin/bash
# Standalone GPU check of the data kernels (RLE encode/decode, Dice) against the CPU reference kernels on
# random masks and every row of the real prediction CSV, with timings. Needs only nvcc (not the CUDA tensor
# runtime). Usage: tools/data-devcheck/run.sh [PREDICTIONS.csv] (default ../shared/data/siim/predictions/...).
set -e
cd "$(dirname "$0")/../.."
CSV=${1:-../shared/data/siim/predictions/stage1-ensemble-5fold-0.4.csv}
ARCH=${ARCH:-sm_90}
/usr/local/cuda/bin/nvcc -O2 -std=c++17 -arch=$ARCH --expt-relaxed-constexpr -I. -Xcompiler -fopenmp -o /tmp/pneumo-data-devcheck \
  tools/data-devcheck/data_kernels_check.cu kernels/cuda/rle.cu kernels/cuda/metric.cu kernels/cpu/data_kernels.cpp kernels/check.cpp -lgomp
/tmp/pneumo-data-devcheck "$CSV"
