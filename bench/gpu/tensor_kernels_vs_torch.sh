#!/usr/bin/env bash
# Memory-bound tensor ops of pneumo (the CUDA kernels behind tensor/ops.h) beside the same work in PyTorch on
# the same GPU, in one run: pneumo's times come from the kernel bench's "tensor_ops" case
# (tools/kernel-bench/tensor_ops_bench.cpp, median of CUDA-event timings), PyTorch's from eager ops
# on an NHWC-shaped [4, 256, 256, 64] tensor. Ratio = pneumo time / torch time (< 1: pneumo faster).
#   usage: bench/gpu/tensor_kernels_vs_torch.sh [build-dir]     (run by tools/gpu-check.sh)
set -uo pipefail
cd "$(dirname "$0")/../.."
build="${1:-${PNEUMO_BUILD_DIR:-build}}"
ours="$(mktemp)"
trap 'rm -f "$ours"' EXIT
if ! "$build/pneumo-kernel-bench" --device cuda --filter tensor_ops --json "$ours" > /dev/null || [ ! -s "$ours" ]; then
  echo "no tensor_ops rows from $build/pneumo-kernel-bench (no GPU, or not built)"
  exit 1
fi
python3 - "$ours" <<'PY'
import json, sys, time
ours = {r["name"]: r["ms"] for r in json.load(open(sys.argv[1]))["results"] if not r["name"].startswith("copy")}
try:
    import torch
    cuda = torch.cuda.is_available()
except Exception:
    cuda = False
theirs = {}
if cuda:
    dev = "cuda"
    def t(fn, reps=20):
        fn(); torch.cuda.synchronize()
        a = time.perf_counter()
        for _ in range(reps): fn()
        torch.cuda.synchronize()
        return (time.perf_counter() - a) / reps * 1e3
    torch.backends.cuda.matmul.allow_tf32 = False
    for dt, sfx in ((torch.float32, "_f32"), (torch.bfloat16, "_bf16")):
        g = torch.Generator(device=dev).manual_seed(0)
        x = torch.rand(4, 256, 256, 64, device=dev, dtype=dt, generator=g) * 2 - 1
        y = torch.rand(4, 256, 256, 64, device=dev, dtype=dt, generator=g) * 2 - 1
        v = torch.rand(64, device=dev, dtype=dt, generator=g)
        half = torch.rand(4, 256, 256, 32, device=dev, dtype=dt, generator=g)
        s = torch.nn.functional.silu
        theirs["sum_channels" + sfx] = t(lambda: x.sum(dim=(0, 1, 2)))
        theirs["sum_hw" + sfx] = t(lambda: x.sum(dim=(1, 2)))
        theirs["sum_all" + sfx] = t(lambda: x.sum())
        theirs["relu" + sfx] = t(lambda: torch.relu(x))
        theirs["swish" + sfx] = t(lambda: s(x))
        theirs["swish_backward" + sfx] = t(lambda: torch.ops.aten.silu_backward(y, x))
        theirs["add" + sfx] = t(lambda: x + y)
        theirs["mul_channel" + sfx] = t(lambda: x * v)
        theirs["add_inplace" + sfx] = t(lambda: y.add_(x, alpha=1e-3))
        theirs["expand_hw" + sfx] = t(lambda: (x.sum(dim=(1, 2))[:, None, None, :] * 0.5).expand(4, 256, 256, 64).contiguous())
        theirs["concat_channels" + sfx] = t(lambda: torch.cat([half, half], dim=3))
    xf = torch.rand(4, 256, 256, 64, device=dev)
    theirs["cast_f32_to_bf16"] = t(lambda: xf.to(torch.bfloat16))
    theirs["uniform_f32"] = t(lambda: torch.empty(4, 256, 256, 64, device=dev).uniform_())
    print(f"GPU: {torch.cuda.get_device_name(0)}; PyTorch {torch.__version__}")
else:
    print("PyTorch with CUDA not available: pneumo times only")
print(f"{'op (NHWC [4,256,256,64])':30s} {'pneumo ms':>10s} {'torch ms':>10s} {'ratio':>7s}")
for name, ms in ours.items():
    th = theirs.get(name)
    print(f"{name:30s} {ms:10.4f} " + (f"{th:10.4f} {ms / th:7.2f}" if th else f"{'-':>10s} {'-':>7s}"))
print("(expand_hw includes the sum_hw that feeds it on both sides)")
PY
