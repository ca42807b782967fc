#!/bin/bash
# Forward+backward time of each full network at 256x256 (batch 2: train-mode BatchNorm of DeepLab's image
# pooling needs two samples) on the CPU: pneumo vs the same
# network in PyTorch (Debian python3-torch), same thread count, in one run; prints the ratios.
# usage: bench/cpu_models_vs_torch.sh [build-dir] [threads] [size] [models] [batch]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
threads="${2:-2}"
size="${3:-256}"
models="${4:-unet_se50,unet_se101,unet_ef3,unet_ef5,deeplab_se50}"
batch="${5:-2}"
out="$(mktemp -d)"
export OMP_NUM_THREADS="$threads"
# Both sides use libgomp: its default spin-waiting collapses on a shared, oversubscribed machine (measured 60x
# slower here), so threads sleep while they wait, for both.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
"$build/pneumo" bench-models --device cpu --models "$models" --size "$size" --batch "$batch" --threads "$threads" | tee "$out/pneumo.txt"
/usr/bin/python3 "$here/bench/cpu_models_torch.py" --models "$models" --size "$size" --batch "$batch" --threads "$threads" | tee "$out/torch.txt"
echo
printf "%-14s %12s %12s %10s\n" model "pneumo (s)" "torch (s)" "ratio"
join <(grep '^bench-models ' "$out/pneumo.txt" | awk '{print $2, $3}' | sort) \
     <(grep '^bench-models ' "$out/torch.txt" | awk '{print $2, $3}' | sort) |
  awk '{printf "%-14s %12.3f %12.3f %9.2fx\n", $1, $2, $3, $2 / $3}'
rm -rf "$out"
