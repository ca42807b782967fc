#!/usr/bin/env bash
# First timing of unet_se50 forward+backward at 1024x1024, batch 4 (the reference's training shape) in
# pneumo (bfloat16 and float32 activations) beside the same network in PyTorch (the twin in
# tests/fixtures/make_model_fixtures.py) with AMP bfloat16 and channels_last, on the same GPU in one run.
# usage: bench/gpu/unet_se50_step_vs_torch.sh BUILD_DIR
set -uo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-${PNEUMO_BUILD_DIR:-$here/build-gpu}}"
for dt in bf16 f32; do
  "$build/pneumo" bench-models --device cuda --dtype "$dt" --models unet_se50 --size 1024 --batch 4 --iters 5
done
python3 - "$here" <<'PY'
import sys, os, time, torch
sys.path.insert(0, os.path.join(sys.argv[1], "tests", "fixtures"))
import make_model_fixtures as twins
torch.backends.cudnn.benchmark = True
m = twins.MODELS["unet_se50"]().cuda().to(memory_format=torch.channels_last).train()
x = torch.randn(4, 3, 1024, 1024, device="cuda").to(memory_format=torch.channels_last)
for amp in (True, False):
    ts = []
    for it in range(6):
        m.zero_grad(set_to_none=True)
        torch.cuda.synchronize(); t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            seg, cls = m(x)
            loss = seg.float().mean() + (cls.float().mean() if cls is not None else 0)
        loss.backward()
        torch.cuda.synchronize()
        if it > 0: ts.append(time.perf_counter() - t0)
    ts.sort()
    print("torch %s unet_se50 fwd+bwd 1024 b4 (%s, channels_last): %.4f s" % (torch.__version__, "AMP bf16" if amp else "f32", ts[len(ts)//2]), flush=True)
PY
