#!/usr/bin/python3
"""`pneumo predict` throughput on the CPU beside a PyTorch eval loop of the same network, in one run, and the
agreement of their probability maps.

    OMP_WAIT_POLICY=passive /usr/bin/python3 bench/predict_vs_torch.py [--build build] [--model unet_se50]
        [--size 1024] [--images 6] [--threads 2] [--device cpu|cuda] [--batch 1]

On --device cuda pneumo runs bf16 activations and PyTorch runs autocast(bfloat16) with channels_last (PyTorch 2.x
with CUDA needed; Debian's python3-torch is CPU only), both at --batch.

Both sides get the same weights (the PyTorch twin of tests/fixtures/make_model_fixtures.py, randomly
initialised with seed 0, its BatchNorm statistics made non-trivial, converted with `pneumo import-weights`) and
the same real 1024x1024 SIIM images (../shared/data/siim/sample/images, repeated as needed), batch 1.
pneumo: the whole `pneumo predict` (decode, resize, normalise, forward, sigmoid, resize back, PNG write, with its
prefetch thread); its own "N images in S s" line is used, so model loading is not counted.
PyTorch: decode (PIL), normalise, forward under no_grad, sigmoid, resize back, PNG write (PIL), per batch.
Neither side excludes its first (warm-up) batch.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "fixtures"))
import make_model_fixtures as twins  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(here, "..", "build"))
    ap.add_argument("--model", default="unet_se50")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data", "siim", "sample", "images"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    files = sorted(glob.glob(os.path.join(a.data, "*.jpg")))
    if not files:
        sys.exit("no images in %s" % a.data)
    tmp = tempfile.mkdtemp(prefix="pneumo-predict-bench-")
    # The same image repeated under distinct names where fewer exist than asked for.
    listed = []
    for i in range(a.images):
        src = files[i % len(files)]
        dst = os.path.join(tmp, "img%03d.jpg" % i)
        os.symlink(os.path.abspath(src), dst)
        listed.append(dst)
    with open(os.path.join(tmp, "list.txt"), "w") as f:
        f.write("\n".join(listed) + "\n")

    torch.manual_seed(0)
    model = twins.MODELS[a.model]()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    model.eval()
    pt = os.path.join(tmp, "weights_pt.safetensors")
    twins.save_safetensors(pt, {k: v for k, v in model.state_dict().items() if v.dtype.is_floating_point})
    ckpt = os.path.join(tmp, "weights.safetensors")
    subprocess.run([os.path.join(a.build, "pneumo"), "import-weights", "--model", a.model, "--weights", pt, "--out",
                    ckpt], check=True, stdout=subprocess.DEVNULL)

    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    out_dir = os.path.join(tmp, "pneumo")
    r = subprocess.run([os.path.join(a.build, "pneumo"), "predict", "--model", a.model, "--weights", ckpt, "--images",
                        os.path.join(tmp, "list.txt"), "--out", out_dir, "--size", str(a.size), "--batch", str(a.batch),
                        "--device", a.device, "--dtype", "bf16"],
                       env=env, capture_output=True, text=True, check=True)
    m = re.search(r"predict: (\d+) images in ([0-9.]+) s", r.stderr)
    pneumo_s = float(m.group(2))
    n = int(m.group(1))

    torch_dir = os.path.join(tmp, "torch")
    os.makedirs(torch_dir)
    dev = torch.device(a.device)
    if a.device == "cuda":
        model = model.to(dev).to(memory_format=torch.channels_last)
    times = []
    diffs = []
    with torch.no_grad():
        for s in range(0, len(listed), a.batch):
            chunk = listed[s:s + a.batch]
            t0 = time.perf_counter()
            imgs = [np.asarray(Image.open(p).convert("L"), dtype=np.float32) for p in chunk]
            h, w = imgs[0].shape
            x = torch.from_numpy(np.stack(imgs)).view(len(chunk), 1, h, w).expand(len(chunk), 3, h, w) / 255.0
            x = ((x - MEAN) / STD).to(dev)
            if (h, w) != (a.size, a.size):
                x = F.interpolate(x, size=(a.size, a.size), mode="bilinear", align_corners=False)
            if a.device == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    seg, _ = model(x)
                seg = seg.float()
            else:
                seg, _ = model(x)
            p = torch.sigmoid(seg)
            if (h, w) != (a.size, a.size):
                p = F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
            q = (p[:, 0] * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
            for k in range(len(chunk)):
                Image.fromarray(q[k]).save(os.path.join(torch_dir, "img%03d.png" % (s + k)))
            times.append(time.perf_counter() - t0)
            for k in range(len(chunk)):
                mine = np.asarray(Image.open(os.path.join(out_dir, "img%03d.png" % (s + k))), dtype=np.int32)
                diffs.append(np.abs(mine - q[k].astype(np.int32)))
    torch_s = sum(times)
    d = np.stack(diffs)
    print("%s at %dx%d, %s, batch %d, %d threads, %d images (%s)" % (a.model, a.size, a.size, a.device, a.batch,
                                                                     a.threads, n, a.data))
    print("pneumo predict : %7.2f s  %6.3f img/s  (whole command minus model loading)" % (pneumo_s, n / pneumo_s))
    print("PyTorch %-7s: %7.2f s  %6.3f img/s  (decode, forward, sigmoid, PNG write per image)" %
          (torch.__version__.split("+")[0], torch_s, n / torch_s))
    print("ratio (pneumo time / PyTorch time): %.2fx" % (pneumo_s / torch_s))
    print("probability PNGs: max |difference| %d levels, mean %.4f, pixels differing %.4f %%" %
          (d.max(), d.mean(), 100.0 * (d > 0).mean()))


if __name__ == "__main__":
    main()
