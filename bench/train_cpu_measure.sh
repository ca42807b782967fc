#!/bin/bash
# The CPU learning measurements of docs/training.md and bench/reports/2026-12-07-train-cpu.md, from scratch
# (no ImageNet weights), one after the other under nice: unet_ef3 on lungs-shenzhen fold 0 and tiny_cls_ef on
# lesions-covid-qu-ex (all-image classification folds, lesion masks). Each run's metrics.csv is the record.
# usage: bench/train_cpu_measure.sh [build-dir] [out-dir]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
out="${2:-/tmp/pneumo-train-measure}"
data="$here/../shared/data"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"  # see bench/cpu_models_vs_torch.sh
mkdir -p "$out"
run() {  # name, then pneumo train arguments
  local name="$1"; shift
  rm -rf "$out/$name"
  local t0=$(date +%s)
  /usr/bin/time -f "$name: %e s wall, %U s user CPU" nice -n 10 "$build/pneumo" train --out "$out/$name" \
    --device cpu "$@" > "$out/$name.log" 2>&1
  echo "$name: $(( $(date +%s) - t0 )) s"; tail -n 1 "$out/$name.log"; cat "$out/$name/metrics.csv"
}
run lungs-unet_ef3-128 --model unet_ef3 --data "$data/lungs-shenzhen" --size 128 --batch 4 --val-batch 8 --epochs 4
run lesions-tiny_cls_ef-256 --model tiny_cls_ef --data "$data/lesions-covid-qu-ex" --masks-subdir lesion-masks \
  --size 256 --batch 8 --val-batch 16 --epochs 4 --lr 0.002
