#!/usr/bin/env bash
# The main job: builds pneumo and trains a small UNet for real on the CPU (or the GPU when there is one):
# lung-field segmentation on ../shared/data/lungs-shenzhen when that folder is present, otherwise on a
# lung-like synthetic set that pneumo generates. Then prints the validation Dice and where the learning
# curves and overlays are. About 5 minutes on 2 cores.
# Usage: tools/demo.sh [build-dir] [run-dir]     (DEMO_EPOCHS, DEMO_SIZE, DEMO_DATA override the defaults)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
run="${2:-$build/demo-run}"
jobs="$(nproc 2>/dev/null || echo 2)"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DPNEUMO_CUDA="${PNEUMO_CUDA:-AUTO}" >/dev/null
cmake --build "$build" -j "$jobs" --target pneumo
"$build/pneumo" info | head -3

# On a shared or busy machine, spinning OpenMP threads wait on descheduled ones (measured 20x slower).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
data="${DEMO_DATA:-../shared/data/lungs-shenzhen}"
if [ -d "$data/images" ]; then
  what="lung fields, $data (fold 0 of 5)"
else
  data="synthetic:400:128"
  what="synthetic lung-like set ($data: 400 images of 128 px, generated)"
fi
rm -rf "$run"
echo "demo: training tiny_unet_se on $what, ${DEMO_SIZE:-128} px -> $run"
start=$(date +%s)
"$build/pneumo" train --model tiny_unet_se --data "$data" --out "$run" --size "${DEMO_SIZE:-128}" --batch 8 \
  --val-batch 16 --epochs "${DEMO_EPOCHS:-8}" --lr 0.002 --device auto
end=$(date +%s)
dice=$(tail -n 1 "$run/metrics.csv" | cut -d, -f5)
echo
echo "demo: validation Dice $dice after ${DEMO_EPOCHS:-8} epochs, $((end - start)) s wall"
echo "demo: learning curves $run/curves.png, validation overlays $run/overlays/ (red: prediction, green: truth)"
echo "demo: per-epoch figures $run/metrics.csv, checkpoints $run/checkpoints/"
