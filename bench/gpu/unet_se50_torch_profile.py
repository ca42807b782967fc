#!/usr/bin/env python3
"""PyTorch's side of the unet_se50 training step at 1024x1024, batch 4, bf16 (issue 12, part 2): the figures
pneumo's step is to be set against, measured on the same GPU in the same gpu-check run.

  1. eager step time: forward + loss + backward, AMP bf16, channels_last, cudnn.benchmark (median of --iters
     after warm-up), the setting of the 54.7 ms figure in bench/reports/2026-11-27-h200/README.md;
  2. peak memory of one step: torch.cuda.max_memory_allocated / max_memory_reserved (reset before the step;
     the weights and their gradients are included, as they are in pneumo's figure);
  3. the profiler's per-op table of one step (top --top ops by device time), then the same grouped by input
     shape (record_shapes, like pneumo's table keyed by op and shape), and the sum of the ops' device time
     against the step's wall time; also the host enqueue time of a step (until backward() returns, before
     the synchronize), as `pneumo bench-models` prints it;
  4. torch.compile (default mode) step time, when torch.compile exists and the time left allows
     (PNEUMO_TIME_LEFT_S, set by tools/gpu-check.sh); the compile time is reported separately, and so is
     the compiled step's peak memory.
The TF32 settings in force are printed (PyTorch's defaults: cudnn.allow_tf32 True, cuda.matmul.allow_tf32
False since 1.12; pneumo's float32 is TF32-free unless PNEUMO_TF32=1). --fp32 also times the float32 step
(no autocast) for pneumo's `--dtype f32` row.
The network is the PyTorch twin of pneumo's (tests/fixtures/make_model_fixtures.py), loss mean(seg) + mean(cls).
Without a GPU (or with --device cpu) it runs the same steps on the CPU at the given size, for a dry run.

usage: bench/gpu/unet_se50_torch_profile.py [BUILD_DIR] [--model unet_se50] [--size 1024] [--batch 4]
                                            [--iters 10] [--top 25] [--device cuda|cpu] [--no-compile] [--fp32]
"""
import argparse
import os
import statistics
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "tests", "fixtures"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir", nargs="?", help="ignored (gpu-check passes it to every bench/gpu script)")
    ap.add_argument("--model", default="unet_se50")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--device", default=None)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--fp32", action="store_true", help="also time the float32 step (no autocast)")
    args = ap.parse_args()
    t_start = time.time()
    left = float(os.environ.get("PNEUMO_TIME_LEFT_S", "600"))

    import torch
    import make_model_fixtures as twins

    dev = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dev == "cuda" and not torch.cuda.is_available():
        print("torch %s: no CUDA device" % torch.__version__)
        return 1
    cuda = dev == "cuda"
    name = torch.cuda.get_device_name(0) if cuda else "cpu"
    print("PyTorch %s on %s: %s fwd+bwd, train mode, batch %d, %dx%d, %s, channels_last"
          % (torch.__version__, name, args.model, args.batch, args.size, args.size, "AMP bf16" if cuda else "float32"))
    if cuda:
        torch.backends.cudnn.benchmark = True
        print("TF32: cudnn.allow_tf32 %s, cuda.matmul.allow_tf32 %s (PyTorch defaults: True, False)"
              % (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
    torch.manual_seed(0)
    model = twins.MODELS[args.model]().to(dev).to(memory_format=torch.channels_last).train()
    x = torch.randn(args.batch, 3, args.size, args.size, device=dev).to(memory_format=torch.channels_last)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    amp = [cuda]

    def step(m):
        m.zero_grad(set_to_none=True)
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=amp[0]):
            seg, cls = m(x)
            loss = seg.float().mean() + (cls.float().mean() if cls is not None else 0)
        loss.backward()

    enqueue = []

    def timed(m, iters, warmup):
        for _ in range(warmup):
            step(m)
        sync()
        ts = []
        del enqueue[:]
        for _ in range(iters):
            t0 = time.perf_counter()
            step(m)
            enqueue.append((time.perf_counter() - t0) * 1e3)
            sync()
            ts.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(ts), min(ts)

    # 1. eager time
    med, best = timed(model, args.iters, 3)
    print("eager step: median %.2f ms, best %.2f ms (%d iters); host enqueue median %.2f ms"
          % (med, best, args.iters, statistics.median(enqueue)), flush=True)
    if args.fp32 and cuda:
        amp[0] = False
        med32, best32 = timed(model, args.iters, 2)
        amp[0] = True
        print("eager step float32 (no autocast): median %.2f ms, best %.2f ms; host enqueue median %.2f ms"
              % (med32, best32, statistics.median(enqueue)), flush=True)

    # 2. peak memory of one step (weights + gradients + activations + workspaces)
    def peak_memory(m, label):
        m.zero_grad(set_to_none=True)
        sync()
        torch.cuda.reset_peak_memory_stats()
        step(m)
        sync()
        print("%s peak memory of one step: allocated %.1f MiB, reserved %.1f MiB (weights %.1f MiB float32)"
              % (label, torch.cuda.max_memory_allocated() / 2**20, torch.cuda.max_memory_reserved() / 2**20,
                 sum(p.numel() for p in model.parameters()) * 4 / 2**20), flush=True)

    if cuda:
        peak_memory(model, "eager")
    else:
        print("peak memory: not measured on the CPU")

    # 3. profiler: per-op table of one step
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sync()
    t0 = time.perf_counter()
    with profile(activities=acts, record_shapes=True) as prof:
        step(model)
        sync()
    wall = (time.perf_counter() - t0) * 1e3
    ka = prof.key_averages()
    sort_key = "self_cpu_time_total"
    if cuda:
        sort_key = "self_cuda_time_total"
        for cand in ("self_device_time_total", "self_cuda_time_total"):
            if hasattr(ka[0], cand):
                sort_key = cand
                break
    dev_sum = sum(getattr(e, sort_key, 0) for e in ka) / 1e3  # us -> ms
    print("profiled step: wall %.2f ms (profiler overhead included); sum of ops' %s %.2f ms"
          % (wall, sort_key, dev_sum))
    print(ka.table(sort_by=sort_key, row_limit=args.top), flush=True)
    print("by input shape:")
    print(prof.key_averages(group_by_input_shape=True).table(sort_by=sort_key, row_limit=args.top), flush=True)

    # 4. torch.compile
    if args.no_compile:
        print("torch.compile: skipped (--no-compile)")
    elif not hasattr(torch, "compile"):
        print("torch.compile: not in PyTorch %s" % torch.__version__)
    else:
        # gpu-check kills this script at its step cap (150 s): stop compiling 10 s before, keeping the figures above.
        cap = min(left, float(os.environ.get("PNEUMO_STEP_CAP_S", "150"))) - (time.time() - t_start) - 10
        if cap < 30:
            print("torch.compile: skipped, %.0f s left of the budget" % cap)
            return 0
        import signal

        def out_of_time(*_):
            raise TimeoutError("torch.compile: out of time (%.0f s)" % cap)

        signal.signal(signal.SIGALRM, out_of_time)
        signal.alarm(int(cap))
        try:
            compiled = torch.compile(model)
            t0 = time.perf_counter()
            step(compiled)
            sync()
            print("torch.compile: first step (compile) %.1f s" % (time.perf_counter() - t0), flush=True)
            med_c, best_c = timed(compiled, args.iters, 2)
            print("torch.compile step: median %.2f ms, best %.2f ms (eager %.2f ms)" % (med_c, best_c, med), flush=True)
            if cuda:
                peak_memory(compiled, "torch.compile")
        except Exception as e:  # the alarm's TimeoutError may come back wrapped by dynamo (BackendCompilerFailed...)
            print("torch.compile: not measured: %s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else ""))
        finally:
            signal.alarm(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
