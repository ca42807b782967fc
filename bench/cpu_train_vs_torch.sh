#!/bin/bash
# CPU training throughput, images/s, in one run: `pneumo train` (loader, reference augmentation, step, and
# Adam; metrics.csv's images_per_s over the epoch, first step included) against the same network's training
# step in PyTorch (Debian python3-torch; batches in memory). Two ratios: against PyTorch with its first step
# excluded (favours PyTorch: pneumo's figure includes its first step and its loader) and with the first
# step included on both sides, PyTorch running steps + 1 steps.
# usage: bench/cpu_train_vs_torch.sh [build-dir] [model] [size] [batch] [steps] [threads]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
model="${2:-unet_se50}"
size="${3:-256}"
batch="${4:-4}"
steps="${5:-4}"
threads="${6:-2}"
out="$(mktemp -d)"
export OMP_NUM_THREADS="$threads"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"  # see bench/cpu_models_vs_torch.sh
"$build/pneumo" train --model "$model" --data "synthetic:$((batch * (steps + 1) * 5 / 4 + 8)):$size" --out "$out/run" \
  --size "$size" --batch "$batch" --val-batch 2 --max-val 2 --epochs 1 --max-steps "$steps" --workers 1 \
  --threads "$threads" --overlays 0 > "$out/pneumo.txt"
p=$(tail -n 1 "$out/run/metrics.csv" | cut -d, -f9)
read -r t t_all < <(/usr/bin/python3 "$here/bench/cpu_train_torch.py" --model "$model" --size "$size" \
  --batch "$batch" --steps "$((steps - 1))" --threads "$threads" | awk '/^train-torch/ {print $3, $4}')
echo "train $model ${size}px batch $batch, $threads threads, $steps steps"
awk -v p="$p" -v t="$t" -v a="$t_all" 'BEGIN {printf "pneumo %.3f img/s   torch %.3f img/s (first step excluded) ratio %.2fx   torch %.3f img/s (included) ratio %.2fx\n", p, t, p / t, a, p / a}'
rm -rf "$out"
