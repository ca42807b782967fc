#!/usr/bin/python3
"""PyTorch side of bench/cpu_train_vs_torch.sh: the training step of pneumo train (forward, the reference
loss of the model, backward, Adam 5e-4) on the same network twin (tests/fixtures/make_model_fixtures.py),
on batches already in memory (no data loading, no augmentation). Prints "train-torch NAME IMAGES_PER_S
IMAGES_PER_S_ALL": over --steps steps after one warm-up step, and over all --steps + 1 steps with the first
(as pneumo's metrics.csv counts its epoch)."""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import make_model_fixtures as twins  # noqa: E402
from make_train_fixtures import soft_dice_loss  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="unet_se50")
ap.add_argument("--size", type=int, default=256)
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--steps", type=int, default=4)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
m = twins.MODELS[a.model]()
m.train()
opt = torch.optim.Adam(m.parameters(), lr=5e-4)
x = torch.randn(a.batch, 3, a.size, a.size)
mask = (torch.rand(a.batch, 1, a.size, a.size) > 0.7).float()
label = torch.ones(a.batch, 1)
t0 = 0.0
t_first = time.perf_counter()
for it in range(a.steps + 1):
    if it == 1:
        t0 = time.perf_counter()
    opt.zero_grad()
    seg, cls = m(x)
    loss = soft_dice_loss(seg, mask)
    if cls is not None:
        loss = loss + F.binary_cross_entropy_with_logits(cls, label)
    loss.backward()
    opt.step()
t_end = time.perf_counter()
print("train-torch %s %.3f %.3f" % (a.model, a.steps * a.batch / (t_end - t0),
                                    (a.steps + 1) * a.batch / (t_end - t_first)), flush=True)
