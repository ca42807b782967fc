// Kernel-bench cases for the training kernels: fused squeeze-excite forward/backward, swish (the tensor
// layer's unary kernel), the fused BCE / focal / soft-dice losses and the multi-tensor Adam update and
// clip-by-norm. Minimal bytes: SE fwd reads x, writes y (2 passes of the activation); SE bwd reads x, dy and
// writes dx (3); swish fwd 2, bwd 3; loss fwd reads logits + targets (2), bwd also writes dlogits (3);
// Adam reads p, g, m, v and writes p, m, v (28 bytes per float32 parameter); the gradient norm reads g once
// (4 bytes per parameter).
#include <string>

#include "kernels/cpu/loss_kernels.h"
#include "kernels/cpu/multi_tensor_cast.h"
#include "kernels/cpu/optim_kernels.h"
#include "kernels/cpu/squeeze_excite_kernels.h"
#include "kernels/cpu/tensor_kernels.h"
#include "tensor/ops.h"
#include "tools/kernel-bench/bench.h"
#if PNEUMO_WITH_CUDA
#include "kernels/cuda/loss_kernels.h"
#include "kernels/cuda/optim_kernels.h"
#include "kernels/cuda/squeeze_excite_kernels.h"
#include "kernels/cuda/tensor_kernels.h"
#endif

namespace pneumo::kbench {
namespace {

std::string nhwc(int64_t n, int64_t h, int64_t w, int64_t c) {
  return std::to_string(n) + "x" + std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c);
}

std::vector<DType> activation_dtypes(const Context& ctx) {
  if (ctx.gpu) return {DType::BF16, DType::F32};
  return {DType::F32};
}

void bench_squeeze_excite(Context& ctx) {
  struct Shape4 {
    int64_t N, H, W, C, R;
    int act;  // 0 ReLU (SE-ResNeXt50 at 1024 px), 1 swish (EfficientNet-B5 at 768 px, stride-8 stage)
    const char* where;
  };
  const bool big = ctx.gpu || ctx.full;
  const std::vector<Shape4> shapes =
      big ? std::vector<Shape4>{{4, 256, 256, 256, 16, 0, "layer1"},
                                {4, 32, 32, 2048, 128, 0, "layer4"},
                                {4, 96, 96, 384, 16, 1, "b5 stage3"}}
          : std::vector<Shape4>{{1, 128, 128, 256, 16, 0, "layer1/16"}, {1, 48, 48, 384, 16, 1, "b5 stage3/16"}};
  for (const Shape4& s : shapes) {
    for (DType dt : activation_dtypes(ctx)) {
      const int64_t n = s.N * s.H * s.W * s.C;
      const size_t es = dtype_size(dt);
      Buffer x = ctx.alloc(n * es), dy = ctx.alloc(n * es), y = ctx.alloc(n * es);
      Buffer w1 = ctx.alloc(s.R * s.C * es), b1 = ctx.alloc(s.R * es), w2 = ctx.alloc(s.C * s.R * es),
             b2 = ctx.alloc(s.C * es);
      Buffer dw1 = ctx.alloc(s.R * s.C * es), db1 = ctx.alloc(s.R * es), dw2 = ctx.alloc(s.C * s.R * es),
             db2 = ctx.alloc(s.C * es);
      x.fill_random(dt, -2, 2, 1);
      dy.fill_random(dt, -1, 1, 2);
      for (Buffer* b : {&w1, &b1, &w2, &b2}) b->fill_random(dt, -0.3f, 0.3f, 3);
      const std::string shape = nhwc(s.N, s.H, s.W, s.C) + " " + s.where;
      const std::string fwd = s.act ? "se_forward (swish)" : "se_forward (relu)";
      const std::string bwd = s.act ? "se_backward (swish)" : "se_backward (relu)";
      if (ctx.gpu) {
#if PNEUMO_WITH_CUDA
        Buffer ws = ctx.alloc(kernels::cuda::squeeze_excite_workspace_bytes(s.N, s.H * s.W, s.C, s.R));
        ctx.run(fwd, shape, dt, 2.0 * n * es, [&] {
          kernels::cuda::squeeze_excite_forward(dt, x.data(), w1.data(), b1.data(), w2.data(), b2.data(), s.N,
                                                s.H * s.W, s.C, s.R, kernels::Activation(s.act), y.data(), ws.data(), ctx.stream);
        });
        ctx.run(bwd, shape, dt, 3.0 * n * es, [&] {
          kernels::cuda::squeeze_excite_backward(dt, x.data(), dy.data(), w1.data(), b1.data(), w2.data(), b2.data(),
                                                 s.N, s.H * s.W, s.C, s.R, kernels::Activation(s.act), y.data(), dw1.data(), db1.data(),
                                                 dw2.data(), db2.data(), ws.data(), ctx.stream);
        });
#endif
      } else {
        ctx.run(fwd, shape, dt, 2.0 * n * es, [&] {
          kernels::cpu::squeeze_excite_forward(dt, x.data(), w1.data(), b1.data(), w2.data(), b2.data(), s.N,
                                               s.H * s.W, s.C, s.R, kernels::Activation(s.act), y.data());
        });
        ctx.run(bwd, shape, dt, 3.0 * n * es, [&] {
          kernels::cpu::squeeze_excite_backward(dt, x.data(), dy.data(), w1.data(), b1.data(), w2.data(), b2.data(),
                                                s.N, s.H * s.W, s.C, s.R, kernels::Activation(s.act), y.data(), dw1.data(), db1.data(),
                                                dw2.data(), db2.data());
        });
      }
    }
  }
}

void bench_swish(Context& ctx) {
  const int64_t N = ctx.gpu || ctx.full ? 4 : 1, H = ctx.gpu || ctx.full ? 256 : 128, C = 256;
  const int64_t n = N * H * H * C;
  const ops::UnaryOp op = ops::UnaryOp::Swish;
  for (DType dt : activation_dtypes(ctx)) {
    const size_t es = dtype_size(dt);
    Buffer x = ctx.alloc(n * es), dy = ctx.alloc(n * es), out = ctx.alloc(n * es);
    x.fill_random(dt, -4, 4, 5);
    dy.fill_random(dt, -1, 1, 6);
    const std::string shape = nhwc(N, H, H, C);
    if (ctx.gpu) {
#if PNEUMO_WITH_CUDA
      ctx.run("swish_forward", shape, dt, 2.0 * n * es,
              [&] { kernels::cuda::unary(dt, op, x.data(), out.data(), n, ctx.stream); });
      ctx.run("swish_backward", shape, dt, 3.0 * n * es, [&] {
        kernels::cuda::unary_backward(dt, op, x.data(), nullptr, dy.data(), out.data(), n, ctx.stream);
      });
#endif
    } else {
      ctx.run("swish_forward", shape, dt, 2.0 * n * es, [&] { kernels::cpu::unary(dt, op, x.data(), out.data(), n); });
      ctx.run("swish_backward", shape, dt, 3.0 * n * es, [&] {
        kernels::cpu::unary_backward(dt, op, x.data(), nullptr, dy.data(), out.data(), n);
      });
    }
  }
}

void bench_losses(Context& ctx) {
  const int64_t B = 4, H = 1024, M = H * H, n = B * M;
  for (DType dt : activation_dtypes(ctx)) {
    const size_t es = dtype_size(dt);
    Buffer x = ctx.alloc(n * es), t = ctx.alloc(n * es), dx = ctx.alloc(n * es);
    Buffer stats = ctx.alloc((2 * B + 1) * 4), loss = ctx.alloc(4), grad = ctx.alloc(4);
    x.fill_random(dt, -4, 4, 7);
    t.fill_random(dt, 0, 1, 8, true);
    grad.fill_random(DType::F32, 1, 1, 9);
    const std::string shape = nhwc(B, H, H, 1);
    if (ctx.gpu) {
#if PNEUMO_WITH_CUDA
      Buffer ws = ctx.alloc(std::max(kernels::cuda::soft_dice_workspace_bytes(B, M),
                                     kernels::cuda::binary_loss_workspace_bytes(n)));
      ctx.run("dice_forward", shape, dt, 2.0 * n * es, [&] {
        kernels::cuda::soft_dice_forward(dt, x.data(), t.data(), B, M, 0.01, static_cast<float*>(stats.data()),
                                         static_cast<float*>(loss.data()), ws.data(), ctx.stream);
      });
      ctx.run("dice_backward", shape, dt, 3.0 * n * es, [&] {
        kernels::cuda::soft_dice_backward(dt, x.data(), t.data(), B, M, static_cast<const float*>(stats.data()),
                                          static_cast<const float*>(grad.data()), dx.data(), ctx.stream);
      });
      for (int kind : {0, 1}) {
        const std::string name = kind == 0 ? "bce" : "focal";
        ctx.run(name + "_forward", shape, dt, 2.0 * n * es, [&] {
          kernels::cuda::binary_loss_forward(dt, kernels::BinaryLoss(kind), 2.0, x.data(), t.data(), n, static_cast<float*>(loss.data()),
                                             ws.data(), ctx.stream);
        });
        ctx.run(name + "_backward", shape, dt, 3.0 * n * es, [&] {
          kernels::cuda::binary_loss_backward(dt, kernels::BinaryLoss(kind), 2.0, x.data(), t.data(), n,
                                              static_cast<const float*>(grad.data()), dx.data(), ctx.stream);
        });
      }
#endif
    } else {
      ctx.run("dice_forward", shape, dt, 2.0 * n * es, [&] {
        kernels::cpu::soft_dice_forward(dt, x.data(), t.data(), B, M, 0.01, stats.data(), loss.data());
      });
      ctx.run("dice_backward", shape, dt, 3.0 * n * es, [&] {
        kernels::cpu::soft_dice_backward(dt, x.data(), t.data(), B, M, stats.data(), grad.data(), dx.data());
      });
      for (int kind : {0, 1}) {
        const std::string name = kind == 0 ? "bce" : "focal";
        ctx.run(name + "_forward", shape, dt, 2.0 * n * es,
                [&] { kernels::cpu::binary_loss_forward(dt, kernels::BinaryLoss(kind), 2.0, x.data(), t.data(), n, loss.data()); });
        ctx.run(name + "_backward", shape, dt, 3.0 * n * es, [&] {
          kernels::cpu::binary_loss_backward(dt, kernels::BinaryLoss(kind), 2.0, x.data(), t.data(), n, grad.data(), dx.data());
        });
      }
    }
  }
}

void bench_optimizer(Context& ctx) {
  // A ResNeXt-like mix of tensor sizes (3x3 grouped convs, 1x1 convs, BN vectors) up to the total.
  const int64_t total_target = ctx.gpu || ctx.full ? 30'000'000 : 4'000'000;
  const int64_t pattern[] = {147456, 65536, 256, 256, 262144, 1024, 1024, 524288, 128, 2048};
  std::vector<int64_t> sizes, offsets;
  int64_t total = 0, offset = 0;
  for (int i = 0; total < total_target; ++i) {
    const int64_t s = std::min(pattern[i % 10], total_target - total);
    sizes.push_back(s);
    offsets.push_back(offset);
    offset += (s + 63) / 64 * 64;  // 256-byte aligned, as the allocator hands them out
    total += s;
  }
  Buffer p = ctx.alloc(offset * 4), g = ctx.alloc(offset * 4), m = ctx.alloc(offset * 4), v = ctx.alloc(offset * 4);
  p.fill_random(DType::F32, -1, 1, 10);
  g.fill_random(DType::F32, -1e-3f, 1e-3f, 11);
  m.fill_zero();
  v.fill_zero();
  std::vector<kernels::OptimTensor> list(sizes.size());
  std::vector<float*> grads(sizes.size());
  for (size_t k = 0; k < sizes.size(); ++k) {
    auto at = [&](const Buffer& b) { return static_cast<float*>(b.data()) + offsets[k]; };
    list[k].param = at(p);
    list[k].grad = at(g);
    list[k].state1 = at(m);
    list[k].state2 = at(v);
    list[k].numel = sizes[k];
    list[k].step_size = 5e-4f;
    list[k].bias_correction2_sqrt = 0.5f;
    grads[k] = at(g);
  }
  // The weights' bf16 copies, one multi-tensor launch (6 bytes per parameter: read float32, write bf16).
  Buffer bf = ctx.alloc(offset * 2);
  std::vector<const float*> cast_src(sizes.size());
  std::vector<uint16_t*> cast_dst(sizes.size());
  for (size_t k = 0; k < sizes.size(); ++k) {
    cast_src[k] = static_cast<const float*>(p.data()) + offsets[k];
    cast_dst[k] = static_cast<uint16_t*>(bf.data()) + offsets[k];
  }
  kernels::OptimHyper hyper;  // Adam defaults
  const std::string shape = std::to_string(sizes.size()) + " tensors, " + std::to_string(total / 1000000) + "M";
  const int count = static_cast<int>(list.size());
  if (ctx.gpu) {
#if PNEUMO_WITH_CUDA
    const size_t bytes = kernels::cuda::optimizer_workspace_bytes(list.data(), count);
    Buffer ws = ctx.alloc(bytes);
    ctx.run("adam_multi_tensor", shape, DType::F32, 28.0 * total,
            [&] { kernels::cuda::optimizer_step(list.data(), count, hyper, ws.data(), bytes, ctx.stream); });
    const size_t cbytes = kernels::cuda::clip_workspace_bytes(sizes.data(), count);
    Buffer cws = ctx.alloc(cbytes), norm = ctx.alloc(4);
    // max_norm huge: the scaling pass exits early, so this times the norm (4 bytes per parameter).
    ctx.run("grad_norm (no clip)", shape, DType::F32, 4.0 * total, [&] {
      kernels::cuda::clip_grad_norm(grads.data(), sizes.data(), count, 1e30f, static_cast<float*>(norm.data()),
                                    cws.data(), cbytes, ctx.stream);
    });
    const size_t mbytes = kernels::cuda::multi_cast_workspace_bytes(sizes.data(), count);
    Buffer mws = ctx.alloc(mbytes);
    ctx.run("cast_bf16_multi_tensor", shape, DType::F32, 6.0 * total, [&] {
      kernels::cuda::multi_tensor_cast_bf16(cast_src.data(), cast_dst.data(), sizes.data(), count, mws.data(), mbytes,
                                            ctx.stream);
    });
#endif
  } else {
    ctx.run("adam_multi_tensor", shape, DType::F32, 28.0 * total,
            [&] { kernels::cpu::optimizer_step(list.data(), count, hyper); });
    ctx.run("grad_norm (no clip)", shape, DType::F32, 4.0 * total,
            [&] { kernels::cpu::multi_tensor_sum_squares(grads.data(), sizes.data(), count); });
    ctx.run("cast_bf16_multi_tensor", shape, DType::F32, 6.0 * total,
            [&] { kernels::cpu::multi_tensor_cast_bf16(cast_src.data(), cast_dst.data(), sizes.data(), count); });
  }
}

PNEUMO_KERNEL_BENCH("squeeze_excite", bench_squeeze_excite);
PNEUMO_KERNEL_BENCH("swish", bench_swish);
PNEUMO_KERNEL_BENCH("losses", bench_losses);
PNEUMO_KERNEL_BENCH("optimizer", bench_optimizer);

}  // namespace
}  // namespace pneumo::kbench
