#!/usr/bin/env bash
# Prepared for the issue's GPU check, NOT YET RUN (no GPU was available when it was written):
# `pneumo train` of unet_se50 at 1024, batch 4, bf16, for --steps steps on the 10 SIIM sample images
# repeated (symlinks under a temporary folder), images/s with the loader included (metrics.csv), peak GPU
# memory seen by nvidia-smi; then a PyTorch 2.x AMP bf16 channels_last training loop (Adam, soft dice + BCE)
# of the same network twin (tests/fixtures/make_model_fixtures.py) on in-memory batches, its images/s and
# torch.cuda.max_memory_allocated; then tools/gpu-check.sh. The pneumo run is repeated with --cuda-graph (the
# whole step captured once and replayed) when PNEUMO_TIME_LEFT_S (set by gpu-check) leaves room for it.
# usage: bench/gpu/train_unet_se50_vs_torch.sh BUILD_DIR [steps] [gpu-check OUTDIR (then runs gpu-check too)]
set -uo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-${PNEUMO_BUILD_DIR:-$here/build-gpu}}"
steps="${2:-200}"
tmp="$(mktemp -d)"
mkdir -p "$tmp/data/images" "$tmp/data/masks"
sample="$here/../shared/data/siim/sample"
data="$tmp/data"
if ls "$sample"/images/*.jpg > /dev/null 2>&1; then
  for r in $(seq 0 99); do  # 1000 images: fold 0 trains on 800 (200 steps of 4)
    for f in "$sample"/images/*.jpg; do
      b="$(basename "$f" .jpg)"
      ln -s "$f" "$tmp/data/images/${b}_$r.jpg"
      ln -s "$sample/masks/$b.jpg" "$tmp/data/masks/${b}_$r.jpg"
    done
  done
else  # ../shared does not travel to the device machine: generated images of the same size, loader included
  echo "no SIIM sample at $sample: training on --data synthetic:1000:1024"
  data="synthetic:1000:1024"
fi
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$tmp/mem.txt" 2>/dev/null &
smi=$!
rc=0  # any run that fails fails the script (gpu-check records it), after the others have run
"$build/pneumo" train --model unet_se50 --data "$data" --out "$tmp/run" --size 1024 --batch 4 --dtype bf16 \
  --device cuda --epochs 1 --max-steps "$steps" --max-val 4 --workers 8 --overlays 0 --log-every 50 \
  --task classification || rc=1  # all images (throughput only)
kill "$smi" 2>/dev/null
echo "pneumo: $(tail -n 1 "$tmp/run/metrics.csv" | cut -d, -f9) img/s (loader included), peak nvidia-smi memory $(sort -n "$tmp/mem.txt" | tail -n 1) MiB"
if [ "${PNEUMO_TIME_LEFT_S:-1000}" -gt 150 ]; then
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$tmp/mem-graph.txt" 2>/dev/null &
  smi=$!
  "$build/pneumo" train --model unet_se50 --data "$data" --out "$tmp/run-graph" --size 1024 --batch 4 --dtype bf16 \
    --device cuda --epochs 1 --max-steps "$steps" --max-val 4 --workers 8 --overlays 0 --log-every 50 \
    --task classification --cuda-graph || rc=1
  kill "$smi" 2>/dev/null
  echo "pneumo --cuda-graph: $(tail -n 1 "$tmp/run-graph/metrics.csv" | cut -d, -f9) img/s (loader included), peak nvidia-smi memory $(sort -n "$tmp/mem-graph.txt" | tail -n 1) MiB"
fi
python3 - "$here" "$steps" <<'PY'
import sys, os, time, torch
import torch.nn.functional as F
sys.path.insert(0, os.path.join(sys.argv[1], "tests", "fixtures"))
import make_model_fixtures as twins
from make_train_fixtures import soft_dice_loss
steps = int(sys.argv[2])
torch.backends.cudnn.benchmark = True
m = twins.MODELS["unet_se50"]().cuda().to(memory_format=torch.channels_last).train()
opt = torch.optim.Adam(m.parameters(), lr=5e-4)
x = torch.randn(4, 3, 1024, 1024, device="cuda").to(memory_format=torch.channels_last)
mask = (torch.rand(4, 1, 1024, 1024, device="cuda") > 0.9).float()
label = torch.ones(4, 1, device="cuda")
for it in range(steps + 5):
    if it == 5:  # the peak of the timed steps, not of cudnn.benchmark's searches in the warm-up
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        seg, cls = m(x)
    loss = soft_dice_loss(seg.float(), mask) + F.binary_cross_entropy_with_logits(cls.float(), label)
    loss.backward()
    opt.step()
torch.cuda.synchronize()
dt = time.perf_counter() - t0
print("torch %s AMP bf16 channels_last: %.2f img/s (in-memory batches), max_memory_allocated %.0f MiB"
      % (torch.__version__, steps * 4 / dt, torch.cuda.max_memory_allocated() / 2**20))
PY
[ $? -eq 0 ] || rc=1
# gpu-check only when asked: gpu-check runs this script as its train step (step 6).
if [ -n "${3:-}" ]; then "$here/tools/gpu-check.sh" "$3" || rc=1; fi
rm -rf "$tmp"
exit $rc
