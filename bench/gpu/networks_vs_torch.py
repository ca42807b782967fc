#!/usr/bin/env python3
"""The five segmentation networks against PyTorch on the same GPU in one run (issue 12's goal table):
unet_se50, unet_se101, unet_ef3, unet_ef5, deeplab_se50 at --size (1024) x --batch (4), bf16.

Per network, each side measured here, one after the other:
  - training step: forward + loss (mean(seg) + mean(cls)) + backward in train mode, median of --iters after
    a warm-up. pneumo: `pneumo bench-models --dtype bf16` (step_ms, peak_allocated_mib). PyTorch: the twin of
    tests/fixtures/make_model_fixtures.py, AMP bf16, channels_last, cudnn.benchmark, grads set to None;
    peak = torch.cuda.max_memory_allocated over one step (weights, gradients, activations, workspaces);
  - inference: eval mode, forward only, no gradients, images/s. pneumo: `pneumo bench-models --mode infer`.
    PyTorch: torch.inference_mode + AMP bf16, channels_last.
Then one table with the ratios against the goals: step time <= 0.80x PyTorch's, peak memory <= 0.75x,
inference >= 1.5x. Each network's figures are printed as soon as they exist and the table covers what was
measured: the script stops starting networks when its time (PNEUMO_TIME_LEFT_S and PNEUMO_STEP_CAP_S, set
by tools/gpu-check.sh) runs low.
Figures also go to $PNEUMO_REPORT_DIR/networks_vs_torch.json.

Without a GPU, `--device cpu --size 64 --batch 2 --iters 1` runs every path on the CPU (float32 on both
sides) as a dry run of the script itself; its figures mean nothing.

usage: bench/gpu/networks_vs_torch.py [BUILD_DIR] [--models a,b] [--size 1024] [--batch 4] [--iters 5]
                                      [--device cuda|cpu]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.abspath(os.path.join(here, "..", ".."))
sys.path.insert(0, os.path.join(root, "tests", "fixtures"))

NETWORKS = "unet_se50,unet_se101,unet_ef3,unet_ef5,deeplab_se50"
GOALS = {"step": 0.80, "memory": 0.75, "infer": 1.5}


def pneumo_figures(binary, name, args, dtype):
    """step_ms and peak_allocated_mib of the training step, images_per_s and peak of inference."""
    common = [binary, "bench-models", "--device", args.device, "--dtype", dtype, "--models", name,
              "--size", str(args.size), "--batch", str(args.batch), "--iters", str(args.iters)]
    out = {}
    for mode in ("train", "infer"):
        r = subprocess.run(common + ["--mode", mode], capture_output=True, text=True)
        sys.stdout.write(r.stdout)
        if r.returncode != 0:
            sys.stdout.write(r.stderr)
            raise RuntimeError("pneumo bench-models --mode %s %s: exit %d" % (mode, name, r.returncode))
        line = next(l for l in r.stdout.splitlines()
                    if l.startswith(("bench-models-detail " if mode == "train" else "bench-models-infer ") + name + " "))
        fields = dict(re.findall(r"(\w+) ([0-9.]+)", line))
        if mode == "train":
            out["step_ms"] = float(fields["step_ms"])
            out["step_peak_mib"] = float(fields["peak_allocated_mib"]) if "peak_allocated_mib" in fields else None
        else:
            out["images_per_s"] = float(fields["images_per_s"])
            out["infer_peak_mib"] = float(fields["peak_allocated_mib"]) if "peak_allocated_mib" in fields else None
    return out


def torch_figures(torch, twins, name, args):
    dev = args.device
    cuda = dev == "cuda"
    torch.manual_seed(0)
    model = twins.MODELS[name]().to(dev).to(memory_format=torch.channels_last)
    x = torch.randn(args.batch, 3, args.size, args.size, device=dev).to(memory_format=torch.channels_last)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)

    def step():
        model.zero_grad(set_to_none=True)
        with autocast():
            seg, cls = model(x)
            loss = seg.float().mean() + (cls.float().mean() if cls is not None else 0)
        loss.backward()

    def infer():
        with torch.inference_mode(), autocast():
            model(x)

    def timed(fn):
        fn()  # warm-up (cudnn.benchmark searches here)
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        ts = []
        for _ in range(args.iters):
            t0 = time.perf_counter()
            fn()
            sync()
            ts.append(time.perf_counter() - t0)
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None  # (no allocator stats on the CPU)
        return statistics.median(ts), peak

    out = {}
    model.train()
    s, out["step_peak_mib"] = timed(step)
    out["step_ms"] = 1e3 * s
    model.zero_grad(set_to_none=True)
    model.eval()
    s, out["infer_peak_mib"] = timed(infer)
    out["images_per_s"] = args.batch / s
    del model, x
    if cuda:
        torch.cuda.empty_cache()
    return out


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(v, spec):
    return "-" if v is None else spec % v


def write_json(args, rows):
    report_dir = os.environ.get("PNEUMO_REPORT_DIR")
    if report_dir:
        with open(os.path.join(report_dir, "networks_vs_torch.json"), "w") as f:
            json.dump({"size": args.size, "batch": args.batch, "device": args.device, "rows": rows}, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir", nargs="?", default=os.environ.get("PNEUMO_BUILD_DIR", os.path.join(root, "build-gpu")))
    ap.add_argument("--models", default=NETWORKS)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    args = ap.parse_args()
    t_start = time.time()
    left = min(float(os.environ.get("PNEUMO_TIME_LEFT_S", "100000")),
               float(os.environ.get("PNEUMO_STEP_CAP_S", "100000"))) - 10  # 10 s to print the table
    binary = os.path.join(args.build_dir, "pneumo")
    if not os.access(binary, os.X_OK):
        print("no pneumo binary at %s" % binary)
        return 1

    import torch
    import make_model_fixtures as twins

    if args.device == "cuda" and not torch.cuda.is_available():
        print("torch %s: no CUDA device" % torch.__version__)
        return 1
    cuda = args.device == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    dtype = "bf16" if cuda else "f32"
    print("networks vs PyTorch %s on %s: batch %d, %dx%d, pneumo %s, PyTorch %s channels_last"
          % (torch.__version__, torch.cuda.get_device_name(0) if cuda else "cpu", args.batch, args.size, args.size,
             dtype, "AMP bf16" if cuda else "float32"), flush=True)

    rows = []
    spent = []
    for name in [n for n in args.models.split(",") if n]:
        elapsed = time.time() - t_start
        need = 1.5 * max(spent) if spent else 60.0  # the first: two pneumo processes' cuDNN searches, PyTorch's
        if left - elapsed < need:
            print("%s: not measured, %.0f s left of the budget (a network took up to %.0f s)"
                  % (name, left - elapsed, max(spent) if spent else 0), flush=True)
            continue
        t0 = time.time()
        row = {"network": name}
        try:
            row["pneumo"] = pneumo_figures(binary, name, args, dtype)
            row["torch"] = torch_figures(torch, twins, name, args)
        except Exception as e:  # one network's failure (e.g. out of memory) leaves the others measured
            row["error"] = str(e)
        spent.append(time.time() - t0)
        print("%s: %s (%.0f s)" % (name, json.dumps(row), spent[-1]), flush=True)
        rows.append(row)
        write_json(args, rows)  # after each network: a run cut off at its cap keeps what it measured

    print()
    print("| network | pneumo step ms | PyTorch step ms | ratio (goal <= %.2f) | pneumo peak MiB | PyTorch peak MiB "
          "| ratio (goal <= %.2f) | pneumo infer img/s | PyTorch infer img/s | ratio (goal >= %.1f) |"
          % (GOALS["step"], GOALS["memory"], GOALS["infer"]))
    print("|---|---|---|---|---|---|---|---|---|---|")
    met = True
    for row in rows:
        if "error" in row:
            print("| %s | failed: %s |" % (row["network"], row["error"]))
            met = False
            continue
        p, t = row["pneumo"], row["torch"]
        rs, rm, ri = ratio(p["step_ms"], t["step_ms"]), ratio(p["step_peak_mib"], t["step_peak_mib"]), \
            ratio(p["images_per_s"], t["images_per_s"])
        row["ratios"] = {"step": rs, "memory": rm, "infer": ri}
        ok = None not in (rs, rm, ri) and rs <= GOALS["step"] and rm <= GOALS["memory"] and ri >= GOALS["infer"]
        met = met and ok
        print("| %s | %.2f | %.2f | %s | %s | %s | %s | %.2f | %.2f | %s |"
              % (row["network"], p["step_ms"], t["step_ms"], fmt(rs, "%.2f"), fmt(p["step_peak_mib"], "%.0f"),
                 fmt(t["step_peak_mib"], "%.0f"), fmt(rm, "%.2f"), p["images_per_s"], t["images_per_s"],
                 fmt(ri, "%.2f")))
    print()
    print("goals met for every measured network: %s" % ("yes" if met and rows else "no"))
    write_json(args, rows)  # with the ratios
    # The goals are targets, not a pass/fail of this script: it fails only when a network could not run.
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
