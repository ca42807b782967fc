#!/usr/bin/python3
"""PyTorch side of bench/cpu_models_vs_torch.sh: forward+backward time (train mode) of the same networks
(the twins in tests/fixtures/make_model_fixtures.py), printing "bench-models NAME SECONDS" like pneumo."""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
import torch  # noqa: E402
import make_model_fixtures as twins  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--models", default="unet_se50,unet_se101,unet_ef3,unet_ef5,deeplab_se50")
ap.add_argument("--size", type=int, default=256)
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--iters", type=int, default=2)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
print("torch %s: forward+backward, train mode, batch %d, %dx%d, %d threads" % (torch.__version__, a.batch, a.size,
                                                                               a.size, torch.get_num_threads()))
for name in a.models.split(","):
    m = twins.MODELS[name]()
    m.train()
    x = torch.randn(a.batch, 3, a.size, a.size)
    times = []
    for it in range(a.iters + 1):
        m.zero_grad()
        t0 = time.perf_counter()
        seg, cls = m(x)
        loss = seg.mean() + (cls.mean() if cls is not None else 0)
        loss.backward()
        if it > 0:
            times.append(time.perf_counter() - t0)
    times.sort()
    print("bench-models %s %.4f" % (name, times[len(times) // 2]), flush=True)
