#!/usr/bin/python3
"""How far float32 and bfloat16 arithmetic alone move each network's outputs and gradients, measured in
PyTorch (Debian's python3-torch, CPU) on the same twins the parity fixtures use. It sets the scale for the
GPU-vs-CPU network tests (tests/nn/models_gpu_test.cpp): a GPU result cannot be expected to sit closer to
the float32 oracle than a second, equally valid evaluation at the same precision does.

Setup as in the GPU test: default (PyTorch) initialisation, eval mode (--train: train mode), batch 2, 64x64, input N(0,1),
loss sum(seg * proj) + sum(cls), proj N(0,1). Reference: float64. Precisions:
  f32   everything float32;
  bf16  bfloat16 storage emulated in float32 at pneumo's CUDA rounding points (see BF16Storage): every
        op's output and every gradient flowing back into it is rounded to bfloat16 (round to nearest even);
        arithmetic inside an op stays float32, as in the engine's kernels (bf16 in/out, float32 accumulation).
Metrics as in the GPU test: max|a-r|/max|r| per tensor; parameter gradients also as one L2 ratio, split into
groups (conv/linear weights, squeeze-excite parameters, the 1-D rest: BatchNorm and biases), and per group the
worst single tensor's error relative to the norm of the WHOLE gradient, max_t |a_t - r_t|_2 / |r|_2 (the
bounded metric of tests/nn/network_compare.h: a near-zero tensor cannot blow it up).

Usage: /usr/bin/python3 bench/model_precision_torch.py [--size 64] [--batch 2] [--seeds 2] [--train] [names...]
"""
import argparse
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
import torch  # noqa: E402

import make_model_fixtures as mm  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.overrides import TorchFunctionMode  # noqa: E402


class RoundBF16(torch.autograd.Function):
    """bf16 storage: the value is rounded forward, and so is the gradient that flows back into it."""

    @staticmethod
    def forward(ctx, x):
        return x.to(torch.bfloat16).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        return g.to(torch.bfloat16).to(g.dtype)


class SigmoidFromStoredY(torch.autograd.Function):
    """sigmoid whose backward reads the bf16-stored output, y (1 - y): pneumo's generic sigmoid before it kept x."""

    @staticmethod
    def forward(ctx, z):
        y = torch.sigmoid(z).to(torch.bfloat16).to(z.dtype)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return (g * y * (1 - y)).to(torch.bfloat16).to(g.dtype)


class RoundGradBF16(torch.autograd.Function):
    """Identity forward; rounds the gradient one consumer sends back, before autograd sums the consumers'
    contributions: a bf16 gradient tensor per use, as pneumo's autograd (and PyTorch AMP's) accumulates."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return g.to(torch.bfloat16).to(g.dtype)


def grad_rounded(a):
    if isinstance(a, (list, tuple)):
        return type(a)(grad_rounded(t) for t in a)
    if torch.is_tensor(a) and a.is_floating_point() and a.requires_grad and not isinstance(a, torch.nn.Parameter):
        return RoundGradBF16.apply(a)
    return a


def rounded(t):
    return RoundBF16.apply(t) if torch.is_tensor(t) and t.is_floating_point() else t


class BF16Storage(TorchFunctionMode):
    """Rounds every op's output to bf16 as pneumo's CUDA backend stores it, except inside fused ops (whose
    intermediates live in float32 registers); conv/linear weights and biases are cast to bf16 as the engine
    casts its float32 masters; BatchNorm parameters and statistics stay float32."""

    fused_depth = 0
    sigmoid_from_stored_y = False
    per_use_grads = True

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if BF16Storage.fused_depth == 0 and BF16Storage.per_use_grads and not getattr(func, "__name__", "").endswith("_"):
            args = tuple(grad_rounded(a) for a in args)
        if func in (F.conv2d, F.linear):
            args = tuple(rounded(a) if i > 0 else a for i, a in enumerate(args))
            kwargs = {k: rounded(v) for k, v in kwargs.items()}
        if func is torch.sigmoid and BF16Storage.sigmoid_from_stored_y and BF16Storage.fused_depth == 0:
            return SigmoidFromStoredY.apply(*args)
        out = func(*args, **kwargs)
        if BF16Storage.fused_depth > 0 or getattr(func, "__name__", "").endswith("_"):
            return out
        if isinstance(out, tuple):
            return tuple(rounded(o) for o in out)
        return rounded(out)


def fused(fn):
    """Marks a twin function as one fused engine op: only its result is rounded."""

    def wrapper(*a, **k):
        if BF16Storage.active and BF16Storage.fused_depth == 0 and BF16Storage.per_use_grads:
            a = tuple(grad_rounded(t) for t in a)
        BF16Storage.fused_depth += 1
        try:
            out = fn(*a, **k)
        finally:
            BF16Storage.fused_depth -= 1
        return rounded(out) if BF16Storage.fused_depth == 0 and BF16Storage.active else out

    return wrapper


BF16Storage.active = False
mm.swish = fused(mm.swish)  # one swish kernel


def fuse_squeeze_excite():  # one squeeze-excite kernel (nn/squeeze_excite.h)
    mm.SEModule.forward = fused(mm.SEModule.forward)
    mm.SqueezeExciteSwish.forward = fused(mm.SqueezeExciteSwish.forward)


def emulate_param_grads(model):
    for p in model.parameters():  # conv/linear weight gradients come back as bf16 through the cast
        if p.dim() > 1:
            p.register_hook(lambda g: g.to(torch.bfloat16).to(g.dtype))


def run(name, state, x, proj, dtype, bf16, train=False):
    m = mm.MODELS[name]()
    m.load_state_dict(state)
    m = m.to(dtype).train(train)
    for mod in m.modules():  # drop-connect is random; the comparison is about arithmetic
        if isinstance(mod, mm.MBConv):
            mod.drop_rate = 0.0
    xi = x.to(dtype).clone().requires_grad_(True)
    if bf16:
        emulate_param_grads(m)
        BF16Storage.active = True
        with BF16Storage():
            seg, cls = m(rounded(xi))
        BF16Storage.active = False
        seg, cls = seg.float(), None if cls is None else cls.float()
    else:
        seg, cls = m(xi)
    loss = (seg * proj.to(dtype)).sum()
    if cls is not None:
        loss = loss + cls.sum()
    loss.backward()
    grads = [(k, p.grad.double()) for k, p in m.named_parameters() if p.grad is not None]
    return seg.double().detach(), None if cls is None else cls.double().detach(), xi.grad.double(), grads


def max_norm(a, r):
    return ((a - r).abs().max() / r.abs().max().clamp_min(1e-30)).item()


def kind(name, t):  # as tests/nn/network_compare.h: conv/linear weights, squeeze-excite, 1-D rest
    return 1 if ".se." in name else (0 if t.dim() >= 2 else 2)


def compare(a, r):
    seg = max_norm(a[0], r[0])
    cls = max_norm(a[1], r[1]) if r[1] is not None else 0.0
    inp = max_norm(a[2], r[2])
    d2, r2 = [0.0] * 3, [0.0] * 3
    worst, wname = 0.0, ""
    tensor_d2 = [[] for _ in range(3)]  # per group: (|a_t - r_t|^2, name)
    for (k, ga), (_, gr) in zip(a[3], r[3]):
        i = kind(k, gr)
        d = ((ga - gr) ** 2).sum().item()
        d2[i] += d
        r2[i] += (gr ** 2).sum().item()
        tensor_d2[i].append((d, k))
        e = max_norm(ga, gr)
        if e > worst:
            worst, wname = e, k
    l2 = [math.sqrt(d / max(q, 1e-300)) for d, q in zip(d2, r2)]
    norm2 = max(sum(r2), 1e-300)
    rel = [max(((math.sqrt(d / norm2), k) for d, k in g), default=(0.0, "")) for g in tensor_d2]
    return seg, cls, inp, math.sqrt(sum(d2) / norm2), l2, worst, wname, rel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("names", nargs="*", default=["tiny_unet_se", "tiny_unet_ef", "tiny_deeplab_se", "tiny_cls_ef",
                                                 "unet_se50", "unet_se101", "unet_ef3", "unet_ef5",
                                                 "deeplab_se50", "cls_ef3"])
    ap.add_argument("--train", action="store_true", help="train mode (BatchNorm on batch statistics)")
    ap.add_argument("--unfused-se", action="store_true", help="squeeze-excite as separate ops (pool, convs, ...)")
    ap.add_argument("--sigmoid-from-y", action="store_true",
                    help="with --unfused-se: sigmoid backward from the stored bf16 output (pneumo before 2026-12-03)")
    ap.add_argument("--sum-grads-in-f32", action="store_true",
                    help="sum the gradient contributions of a tensor's uses in float32 before rounding (not pneumo)")
    args = ap.parse_args()
    BF16Storage.per_use_grads = not args.sum_grads_in_f32
    if not args.unfused_se:
        fuse_squeeze_excite()
    BF16Storage.sigmoid_from_stored_y = args.sigmoid_from_y
    print("batch %d, %dx%d, %s mode" % (args.batch, args.size, args.size, "train" if args.train else "eval"))
    print("| network | seed | vs | seg | cls | input grad | param grads L2 | weights / SE / BN+bias L2 "
          "| weights / SE / BN+bias worst tensor vs whole-gradient norm | worst param grad (max-normalised) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.names:
        for seed in range(args.seeds):
            torch.manual_seed(1000 + seed)
            state = mm.MODELS[name]().state_dict()
            x = torch.randn(args.batch, 3, args.size, args.size, dtype=torch.float64)
            # proj matches seg's shape (the DeepLab output is smaller than the input)
            with torch.no_grad():
                m = mm.MODELS[name]()
                m.load_state_dict(state)
                seg_shape = m.eval()(x.float())[0].shape
            proj = torch.randn(seg_shape, dtype=torch.float64)
            ref = run(name, state, x, proj, torch.float64, False, args.train)
            f32 = run(name, state, x, proj, torch.float32, False, args.train)
            b16 = run(name, state, x, proj, torch.float32, True, args.train)
            for label, a, r in (("f32 / f64", f32, ref), ("bf16 / f64", b16, ref), ("bf16 / f32", b16, f32)):
                s, c, i, l2, parts, w, wn, rel = compare(a, r)
                print("| %s | %d | %s | %.1e | %.1e | %.1e | %.1e | %.1e / %.1e / %.1e | %.1e / %.1e / %.1e (%s) "
                      "| %.1e (%s) |" % (name, seed, label, s, c, i, l2, parts[0], parts[1], parts[2], rel[0][0],
                                         rel[1][0], rel[2][0], max(rel)[1], w, wn), flush=True)


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("PNEUMO_TORCH_THREADS", "2")))
    main()
