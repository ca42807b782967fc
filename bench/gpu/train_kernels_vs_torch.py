#!/usr/bin/env python3
# The same work as pneumo-kernel-bench's training-kernel cases, done by PyTorch (eager, and its fused Adam)
# on the same GPU, so the two can be put side by side as ratios (run them in one device session).
# Shapes and dtypes match tools/kernel-bench/train_kernels_bench.cpp. Times: CUDA events, median of 20 after
# 3 warm-ups. Usage: bench/gpu/train_kernels_vs_torch.py [build-dir] [--json FILE]  (the build dir is unused)
import json
import sys

import torch
import torch.nn.functional as F


def timed(fn, reps=20, warm=3):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def main():
    if not torch.cuda.is_available():
        print("no CUDA device: skipped")
        return 0
    dev = "cuda"
    rows = []
    src = torch.empty(1 << 30, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    rows.append(("copy (d2d)", "1024 MiB", "uint8", timed(lambda: dst.copy_(src)), 2.0 * src.numel()))

    for (n, h, c, r, where) in ((4, 256, 256, 16, "layer1"), (4, 32, 2048, 128, "layer4")):
        for dt in (torch.bfloat16, torch.float32):
            x = torch.randn(n, c, h, h, device=dev, dtype=dt).contiguous(memory_format=torch.channels_last)
            x.requires_grad_(True)
            w1 = torch.randn(r, c, 1, 1, device=dev, dtype=dt) * 0.1
            b1 = torch.zeros(r, device=dev, dtype=dt)
            w2 = torch.randn(c, r, 1, 1, device=dev, dtype=dt) * 0.1
            b2 = torch.zeros(c, device=dev, dtype=dt)

            def se():
                s = x.mean((2, 3), keepdim=True)
                s = F.conv2d(F.relu(F.conv2d(s, w1, b1)), w2, b2)
                return x * torch.sigmoid(s)

            y = se()
            dy = torch.randn_like(y)
            es = x.element_size()
            shape = f"{n}x{h}x{h}x{c} {where}"
            name = str(dt).replace("torch.", "")
            with torch.no_grad():
                rows.append(("se_forward (relu)", shape, name, timed(se), 2.0 * x.numel() * es))
            rows.append(("se_fwd+bwd (relu)", shape, name,
                         timed(lambda: torch.autograd.grad(se(), x, dy)), 5.0 * x.numel() * es))

    for dt in (torch.bfloat16, torch.float32):
        x = torch.randn(4, 256, 256, 256, device=dev, dtype=dt).contiguous(memory_format=torch.channels_last)
        es = x.element_size()
        name = str(dt).replace("torch.", "")
        rows.append(("swish_forward", "4x256x256x256", name, timed(lambda: F.silu(x)), 2.0 * x.numel() * es))

    for dt in (torch.bfloat16, torch.float32):
        x = torch.randn(4, 1, 1024, 1024, device=dev, dtype=dt, requires_grad=True)
        t = (torch.rand(4, 1, 1024, 1024, device=dev) < 0.3).to(dt)
        es = x.element_size()
        name = str(dt).replace("torch.", "")

        def dice():
            b = x.shape[0]
            p = torch.sigmoid(x.float()).view(b, -1)
            tt = t.float().view(b, -1)
            score = (2.0 * ((p * tt).sum(1) + 0.01) / ((p * p).sum(1) + (tt * tt).sum(1) + 0.01)).sum() / b
            return 1.0 - torch.clamp(score, 0.0, 1.0 - 1e-7)

        with torch.no_grad():
            rows.append(("dice_forward", "4x1024x1024x1", name, timed(dice), 2.0 * x.numel() * es))
        rows.append(("dice_fwd+bwd", "4x1024x1024x1", name, timed(lambda: torch.autograd.grad(dice(), x)),
                     5.0 * x.numel() * es))
        bce = lambda: F.binary_cross_entropy_with_logits(x, t)
        with torch.no_grad():
            rows.append(("bce_forward", "4x1024x1024x1", name, timed(bce), 2.0 * x.numel() * es))

    pattern = [147456, 65536, 256, 256, 262144, 1024, 1024, 524288, 128, 2048]
    sizes, total = [], 0
    while total < 30_000_000:
        s = min(pattern[len(sizes) % 10], 30_000_000 - total)
        sizes.append(s)
        total += s
    params = [torch.nn.Parameter(torch.randn(s, device=dev)) for s in sizes]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    for label, kw in (("adam (fused=True)", {"fused": True}), ("adam (foreach=True)", {"foreach": True})):
        opt = torch.optim.Adam(params, lr=5e-4, **kw)
        rows.append((label, f"{len(sizes)} tensors, 30M", "float32", timed(opt.step), 28.0 * total))

    copy_gbps = rows[0][4] / (rows[0][3] * 1e6)
    print(f"PyTorch {torch.__version__} on {torch.cuda.get_device_name()}: median of 20; GB/s over minimal bytes")
    print(f"  {'op':26s} {'shape':26s} {'dtype':9s} {'time':>13s} {'bandwidth':>14s} {'%copy':>7s}")
    out = []
    for name, shape, dt, ms, nbytes in rows:
        gbps = nbytes / (ms * 1e6)
        print(f"  {name:26s} {shape:26s} {dt:9s} {ms:10.4f} ms {gbps:9.1f} GB/s {100 * gbps / copy_gbps:6.1f}%")
        out.append({"name": name, "shape": shape, "dtype": dt, "ms": ms, "bytes": nbytes, "gbps": gbps})
    if "--json" in sys.argv:
        with open(sys.argv[sys.argv.index("--json") + 1], "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "copy_gbps": copy_gbps, "results": out}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
