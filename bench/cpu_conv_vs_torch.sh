#!/usr/bin/env bash
# The decoder's 3x3 convolutions on the CPU, pneumo beside PyTorch (Debian python3-torch, /usr/bin/python3)
# in one run, same threads: forward, backward data and backward weight of each unet_se50 decoder block's
# first conv at 256 px, batch 4 (`pneumo bench --suite conv`). PyTorch runs aten::convolution_backward, the
# op its autograd calls (oneDNN), on NCHW tensors as bench/cpu_train_torch.py trains them.
# Usage: bench/cpu_conv_vs_torch.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
threads="${OMP_NUM_THREADS:-$(nproc)}"
export OMP_NUM_THREADS="$threads"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"  # see bench/cpu_models_vs_torch.sh
json="$(mktemp)"
trap 'rm -f "$json"' EXIT
echo "== pneumo (OMP_NUM_THREADS=$threads)"
"$build/pneumo" bench --suite conv --device cpu --iters 5 --json "$json"
echo "== PyTorch $(/usr/bin/python3 -c 'import torch;print(torch.__version__)') (torch threads $threads)"
/usr/bin/python3 - "$threads" "$json" <<'PY'
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
ours = {r["name"]: r for r in json.load(open(sys.argv[2]))}
def med(fn, reps=5):
    fn(); ts = []
    for _ in range(reps):
        a = time.perf_counter(); fn(); ts.append(time.perf_counter() - a)
    return sorted(ts)[len(ts) // 2]
print(f"{'benchmark':44s} {'torch ms':>10s} {'pneumo ms':>10s} {'time ratio':>11s}")
worst = 0.0
for hw, c, k in ((16, 3072, 256), (32, 768, 128), (64, 384, 64), (128, 128, 32), (256, 32, 16), (256, 16, 16)):
    n = 4
    x, w, dy = torch.rand(n, c, hw, hw) * 2 - 1, torch.rand(k, c, 3, 3) * 2 - 1, torch.rand(n, k, hw, hw) * 2 - 1
    bwd = lambda mask: torch.ops.aten.convolution_backward(dy, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)
    for name, fn in (("fwd", lambda: torch.nn.functional.conv2d(x, w, padding=1)),
                     ("dgrad", lambda: bwd([True, False, False])), ("wgrad", lambda: bwd([False, True, False]))):
        s = med(fn)
        row = f"conv3x3 {name} {n}x{hw}x{hw}x{c}->{k} f32 cpu"
        r = ours[row]["seconds"] / s
        worst = max(worst, r)
        print(f"{row:44s} {s * 1e3:10.2f} {ours[row]['seconds'] * 1e3:10.2f} {r:10.2f}x")
print(f"(time ratio pneumo / torch: < 1 means pneumo is faster; worst row {worst:.2f}x)")
PY
