#!/usr/bin/env bash
# CPU GEMM of pneumo beside torch.matmul and torch.conv2d (Debian's python3-torch, /usr/bin/python3) on the
# same machine in one run, same thread count. Usage: bench/cpu_gemm_vs_torch.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
threads="${OMP_NUM_THREADS:-$(nproc)}"
export OMP_NUM_THREADS="$threads"
echo "== pneumo (OMP_NUM_THREADS=$threads)"
"$build/pneumo" bench --suite gemm --device cpu --iters 5 --json /tmp/pneumo-gemm.json
echo "== PyTorch $(/usr/bin/python3 -c 'import torch;print(torch.__version__)') (torch threads $threads)"
/usr/bin/python3 - "$threads" <<'PY'
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
def med(fn, reps=5):
    fn(); ts = []
    for _ in range(reps):
        a = time.perf_counter(); fn(); ts.append(time.perf_counter() - a)
    return sorted(ts)[len(ts) // 2]
rows = []
for n in (1024, 2048):
    a, b = torch.rand(n, n) * 2 - 1, torch.rand(n, n) * 2 - 1
    s = med(lambda: torch.matmul(a, b)); rows.append((f"gemm {n}^3 f32 cpu", s, 2 * n**3 / s / 1e9))
x, w = torch.randn(1, 256, 64, 64), torch.randn(256, 256, 3, 3)
s = med(lambda: torch.nn.functional.conv2d(x, w, padding=1))
rows.append(("conv3x3 256->256 64x64 (torch.conv2d)", s, 2 * 4096 * 256 * 2304 / s / 1e9))
print(f"{'benchmark':44s} {'median ms':>12s} {'GFLOP/s':>12s}")
for r in rows: print(f"{r[0]:44s} {r[1]*1e3:12.3f} {r[2]:12.1f}")
ours = {r["name"]: r for r in json.load(open("/tmp/pneumo-gemm.json"))}
print("\n== ratio pneumo / torch (time; < 1 means pneumo is faster)")
for (name, s, _), ours_name in zip(rows, ["gemm 1024^3 f32 cpu", "gemm 2048^3 f32 cpu", "conv3x3 256->256 64x64 as gemm f32 cpu"]):
    print(f"{name:44s} {ours[ours_name]['seconds'] / s:8.2f}")
PY
