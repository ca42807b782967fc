// Kernel-bench cases for the fused BatchNorm (issue 12 part 2 items 2-3; target >= 80 % of copy bandwidth
// on the GPU) beside the unfused BatchNorm kernels they replace. Minimal bytes (es = element size, N the
// activation's elements): statistics read x (N es; the unfused kernel reads it twice, its row still counts
// N es); apply + ReLU reads x, writes y (2); backward reduce reads dy, y (ReLU mask), x (3); backward data
// reads dy, y, x and writes dx (4); tail apply also reads the residual (3); the tail's reduce also writes
// the residual's gradient (4). The [C] / [N, C] finishing kernels are inside the timed calls.
#include <algorithm>
#include <string>
#include <vector>

#include "kernels/cpu/fused_bn_kernels.h"
#include "kernels/cpu/fused_upsample_kernels.h"
#include "kernels/cpu/layer_kernels.h"
#include "kernels/cpu/tensor_kernels.h"
#include "tools/kernel-bench/bench.h"
#if PNEUMO_WITH_CUDA
#include "kernels/cuda/fused_bn_kernels.h"
#include "kernels/cuda/fused_upsample_kernels.h"
#include "kernels/cuda/layer_kernels.h"
#include "kernels/cuda/tensor_kernels.h"
#endif

namespace pneumo::kbench {
namespace {

struct BnShape {
  int64_t n, h, w, c;
};

std::string shape_name(const BnShape& s, const char* suffix = "") {
  return std::to_string(s.n) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w) + "x" + std::to_string(s.c) +
         suffix;
}

// Per-channel vectors of the statistics dtype (float32; float64 is not benchmarked).
struct Channels {
  Buffer mean, var, w, b, s0, s1, dw, db;
};
Channels channel_buffers(Context& ctx, int64_t c) {
  Channels v{ctx.alloc(c * 4), ctx.alloc(c * 4), ctx.alloc(c * 4), ctx.alloc(c * 4),
             ctx.alloc(c * 4), ctx.alloc(c * 4), ctx.alloc(c * 4), ctx.alloc(c * 4)};
  v.mean.fill_random(DType::F32, -0.1f, 0.1f, 11);
  v.var.fill_random(DType::F32, 0.5f, 1.5f, 12);
  v.w.fill_random(DType::F32, 0.5f, 1.5f, 13);
  v.b.fill_random(DType::F32, -0.5f, 0.5f, 14);
  v.db.fill_zero();  // read by the tails' backward-data rows
  v.dw.fill_zero();
  return v;
}

void bench_fused_bn(Context& ctx) {
  const bool big = ctx.gpu || ctx.full;
  // The three shapes: the decoder's last block (C 16 at full size), SE-ResNeXt layer1-like, layer4.
  const std::vector<BnShape> shapes = big ? std::vector<BnShape>{{4, 1024, 1024, 16}, {4, 256, 256, 128}, {4, 32, 32, 1024}}
                                          : std::vector<BnShape>{{1, 256, 256, 16}, {1, 64, 64, 128}, {1, 16, 16, 1024}};
  const std::vector<DType> dtypes = ctx.gpu ? std::vector<DType>{DType::BF16, DType::F32} : std::vector<DType>{DType::F32};
  const double eps = 1e-5;
  for (const BnShape& s : shapes)
    for (DType dt : dtypes) {
      const int64_t hw = s.h * s.w, rows = s.n * hw, total = rows * s.c;
      const double es = static_cast<double>(dtype_size(dt)), nb = static_cast<double>(total) * es;
      Buffer x = ctx.alloc(total * es), y = ctx.alloc(total * es), dy = ctx.alloc(total * es),
             dx = ctx.alloc(total * es);
      x.fill_random(dt, -2, 2, 1);
      dy.fill_random(dt, -1, 1, 2);
      Channels v = channel_buffers(ctx, s.c);
      const std::string shape = shape_name(s);
      if (ctx.gpu) {
#if PNEUMO_WITH_CUDA
        namespace k = kernels::cuda;
        const int64_t scratch_floats =
            std::max(k::fused_bn_scratch_floats(dt, s.n, hw, s.c), k::batch_norm_scratch_floats(rows, s.c));
        Buffer scratch = ctx.alloc(scratch_floats * 4);
        auto f = [](const Buffer& b) { return static_cast<float*>(b.data()); };
        ctx.run("bn_statistics (unfused, 2 reads)", shape, dt, nb, [&] {
          k::batch_norm_statistics(dt, x.data(), rows, s.c, f(v.mean), f(v.var), f(scratch), ctx.stream);
        });
        ctx.run("bn_statistics (fused, 1 read)", shape, dt, nb, [&] {
          k::fused_bn_statistics(dt, x.data(), s.n, hw, s.c, f(v.mean), f(v.var), nullptr, f(scratch), ctx.stream);
        });
        v.var.fill_random(DType::F32, 0.5f, 1.5f, 12);
        ctx.run("bn_apply (unfused, no relu)", shape, dt, 2 * nb, [&] {
          k::batch_norm_apply(dt, x.data(), rows, s.c, f(v.mean), f(v.var), eps, f(v.w), f(v.b), y.data(), ctx.stream);
        });
        ctx.run("bn_relu_apply (fused)", shape, dt, 2 * nb, [&] {
          k::fused_bn_apply(dt, x.data(), s.n, hw, s.c, f(v.mean), f(v.var), eps, f(v.w), f(v.b), nullptr, nullptr,
                            true, y.data(), ctx.stream);
        });
        ctx.run("bn_relu_backward_reduce (fused)", shape, dt, 3 * nb, [&] {
          k::fused_bn_backward_reduce(dt, dy.data(), y.data(), x.data(), s.n, hw, s.c, f(v.mean), f(v.var), eps, true,
                                      false, f(v.db), f(v.dw), nullptr, f(scratch), ctx.stream);
        });
        ctx.run("bn_relu_backward_data (fused)", shape, dt, 4 * nb, [&] {
          k::fused_bn_backward_data(dt, dy.data(), y.data(), x.data(), s.n, hw, s.c, f(v.mean), f(v.var), eps, f(v.w),
                                    nullptr, nullptr, f(v.db), f(v.dw), true, true, false, dx.data(), ctx.stream);
        });
#endif
      } else {
        namespace k = kernels::cpu;
        ctx.run("bn_statistics (unfused, 2 reads)", shape, dt, nb,
                [&] { k::batch_norm_statistics(dt, x.data(), rows, s.c, v.mean.data(), v.var.data()); });
        ctx.run("bn_statistics (fused, 1 read)", shape, dt, nb, [&] {
          k::fused_bn_statistics(dt, x.data(), s.n, hw, s.c, v.mean.data(), v.var.data(), nullptr);
        });
        ctx.run("bn_relu_apply (fused)", shape, dt, 2 * nb, [&] {
          k::fused_bn_apply(dt, x.data(), s.n, hw, s.c, v.mean.data(), v.var.data(), eps, v.w.data(), v.b.data(),
                            nullptr, nullptr, true, y.data());
        });
        ctx.run("bn_relu_backward_reduce (fused)", shape, dt, 3 * nb, [&] {
          k::fused_bn_backward_reduce(dt, dy.data(), y.data(), x.data(), s.n, hw, s.c, v.mean.data(), v.var.data(), eps,
                                      true, false, v.db.data(), v.dw.data(), nullptr);
        });
        ctx.run("bn_relu_backward_data (fused)", shape, dt, 4 * nb, [&] {
          k::fused_bn_backward_data(dt, dy.data(), y.data(), x.data(), s.n, hw, s.c, v.mean.data(), v.var.data(), eps,
                                    v.w.data(), nullptr, nullptr, v.db.data(), v.dw.data(), true, true, false,
                                    dx.data());
        });
      }
    }
}

void bench_bottleneck_tail(Context& ctx) {
  const bool big = ctx.gpu || ctx.full;
  // SE-ResNeXt50 at 1024 px, batch 4: layer1's and layer4's tails.
  const std::vector<BnShape> shapes = big ? std::vector<BnShape>{{4, 256, 256, 256}, {4, 32, 32, 2048}}
                                          : std::vector<BnShape>{{1, 64, 64, 256}, {1, 8, 8, 2048}};
  const std::vector<DType> dtypes = ctx.gpu ? std::vector<DType>{DType::BF16, DType::F32} : std::vector<DType>{DType::F32};
  const double eps = 1e-5;
  for (const BnShape& s : shapes)
    for (DType dt : dtypes) {
      const int64_t hw = s.h * s.w, total = s.n * hw * s.c;
      const double es = static_cast<double>(dtype_size(dt)), nb = static_cast<double>(total) * es;
      Buffer x = ctx.alloc(total * es), y = ctx.alloc(total * es), dy = ctx.alloc(total * es),
             dx = ctx.alloc(total * es), res = ctx.alloc(total * es), dres = ctx.alloc(total * es);
      x.fill_random(dt, -2, 2, 1);
      dy.fill_random(dt, -1, 1, 2);
      res.fill_random(dt, -1, 1, 3);
      Channels v = channel_buffers(ctx, s.c);
      Buffer ss = ctx.alloc(s.n * s.c * 4), gate = ctx.alloc(s.n * s.c * 4), dpool = ctx.alloc(s.n * s.c * 4),
             s0 = ctx.alloc(s.n * s.c * 4), s1 = ctx.alloc(s.n * s.c * 4);
      gate.fill_random(DType::F32, 0.f, 1.f, 4);
      dpool.fill_random(DType::F32, -0.1f, 0.1f, 5);
      const std::string shape = shape_name(s, " tail");
      if (ctx.gpu) {
#if PNEUMO_WITH_CUDA
        namespace k = kernels::cuda;
        Buffer scratch = ctx.alloc(k::fused_bn_scratch_floats(dt, s.n, hw, s.c) * 4);
        auto f = [](const Buffer& b) { return static_cast<float*>(b.data()); };
        ctx.run("tail_statistics+pool", shape, dt, nb, [&] {
          k::fused_bn_statistics(dt, x.data(), s.n, hw, s.c, f(v.mean), f(v.var), f(ss), f(scratch), ctx.stream);
        });
        v.var.fill_random(DType::F32, 0.5f, 1.5f, 12);
        ctx.run("tail_apply (gate,res,relu)", shape, dt, 3 * nb, [&] {
          k::fused_bn_apply(dt, x.data(), s.n, hw, s.c, f(v.mean), f(v.var), eps, f(v.w), f(v.b), f(gate), res.data(),
                            true, y.data(), ctx.stream);
        });
        ctx.run("tail_backward_reduce", shape, dt, 4 * nb, [&] {
          k::fused_bn_backward_reduce(dt, dy.data(), y.data(), x.data(), s.n, hw, s.c, f(v.mean), f(v.var), eps, true,
                                      true, f(s0), f(s1), dres.data(), f(scratch), ctx.stream);
        });
        ctx.run("tail_backward_data", shape, dt, 4 * nb, [&] {
          k::fused_bn_backward_data(dt, dy.data(), y.data(), x.data(), s.n, hw, s.c, f(v.mean), f(v.var), eps, f(v.w),
                                    f(gate), f(dpool), f(v.db), f(v.dw), true, true, false, dx.data(), ctx.stream);
        });
#endif
      } else {
        namespace k = kernels::cpu;
        ctx.run("tail_statistics+pool", shape, dt, nb, [&] {
          k::fused_bn_statistics(dt, x.data(), s.n, hw, s.c, v.mean.data(), v.var.data(), ss.data());
        });
        ctx.run("tail_apply (gate,res,relu)", shape, dt, 3 * nb, [&] {
          k::fused_bn_apply(dt, x.data(), s.n, hw, s.c, v.mean.data(), v.var.data(), eps, v.w.data(), v.b.data(),
                            gate.data(), res.data(), true, y.data());
        });
        ctx.run("tail_backward_reduce", shape, dt, 4 * nb, [&] {
          k::fused_bn_backward_reduce(dt, dy.data(), y.data(), x.data(), s.n, hw, s.c, v.mean.data(), v.var.data(), eps,
                                      true, true, s0.data(), s1.data(), dres.data());
        });
        ctx.run("tail_backward_data", shape, dt, 4 * nb, [&] {
          k::fused_bn_backward_data(dt, dy.data(), y.data(), x.data(), s.n, hw, s.c, v.mean.data(), v.var.data(), eps,
                                    v.w.data(), gate.data(), dpool.data(), v.db.data(), v.dw.data(), true, true, false,
                                    dx.data());
        });
      }
    }
}

// The UNet decoder's upsample + concat (item 5a) against the unfused pair (upsample, then copy both parts
// into the concat buffer). Minimal bytes: forward reads x and skip, writes y; backward reads dy, writes dx
// and dskip. The unfused rows move the same minimal bytes in more passes.
void bench_upsample_concat(Context& ctx) {
  const bool big = ctx.gpu || ctx.full;
  struct UcShape {
    int64_t n, h, w, cx, cs;
  };
  // unet_se50 decoder at 1024 px, batch 4: layer1 (x 2048 at 32x32, skip 1024) and layer4 (x 128 at 256x256,
  // skip 64).
  const std::vector<UcShape> shapes = big ? std::vector<UcShape>{{4, 32, 32, 2048, 1024}, {4, 256, 256, 128, 64}}
                                          : std::vector<UcShape>{{1, 8, 8, 2048, 1024}, {1, 64, 64, 128, 64}};
  const std::vector<DType> dtypes = ctx.gpu ? std::vector<DType>{DType::BF16, DType::F32} : std::vector<DType>{DType::F32};
  for (const UcShape& s : shapes)
    for (DType dt : dtypes) {
      const int64_t es = static_cast<int64_t>(dtype_size(dt)), px = s.n * 4 * s.h * s.w, ct = s.cx + s.cs;
      const double xb = static_cast<double>(s.n * s.h * s.w * s.cx * es), sb = static_cast<double>(px * s.cs * es),
                   yb = static_cast<double>(px * ct * es);
      Buffer x = ctx.alloc(s.n * s.h * s.w * s.cx * es), skip = ctx.alloc(px * s.cs * es), y = ctx.alloc(px * ct * es),
             up = ctx.alloc(px * s.cx * es), dx = ctx.alloc(s.n * s.h * s.w * s.cx * es),
             dskip = ctx.alloc(px * s.cs * es);
      x.fill_random(dt, -1, 1, 1);
      skip.fill_random(dt, -1, 1, 2);
      const std::string shape = std::to_string(s.n) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w) + "x" +
                                std::to_string(s.cx) + " + skip " + std::to_string(s.cs);
      if (ctx.gpu) {
#if PNEUMO_WITH_CUDA
        namespace k = kernels::cuda;
        ctx.run("upsample+concat (unfused)", shape, dt, xb + sb + yb, [&] {
          k::upsample_nearest2x_forward(dt, x.data(), s.n, s.h, s.w, s.cx, up.data(), ctx.stream);
          k::copy_rows(up.data(), s.cx * es, y.data(), ct * es, s.cx * es, px, ctx.stream);
          k::copy_rows(skip.data(), s.cs * es, static_cast<char*>(y.data()) + s.cx * es, ct * es, s.cs * es, px,
                       ctx.stream);
        });
        ctx.run("upsample2x_concat (fused)", shape, dt, xb + sb + yb, [&] {
          k::upsample2x_concat_forward(dt, x.data(), skip.data(), s.n, s.h, s.w, s.cx, s.cs, y.data(), ctx.stream);
        });
        ctx.run("upsample2x_concat_backward", shape, dt, yb + xb + sb, [&] {
          k::upsample2x_concat_backward(dt, y.data(), s.n, s.h, s.w, s.cx, s.cs, dx.data(), dskip.data(), ctx.stream);
        });
#endif
      } else {
        namespace k = kernels::cpu;
        ctx.run("upsample2x_concat (fused)", shape, dt, xb + sb + yb, [&] {
          k::upsample2x_concat_forward(dt, x.data(), skip.data(), s.n, s.h, s.w, s.cx, s.cs, y.data());
        });
        ctx.run("upsample2x_concat_backward", shape, dt, yb + xb + sb, [&] {
          k::upsample2x_concat_backward(dt, y.data(), s.n, s.h, s.w, s.cx, s.cs, dx.data(), dskip.data());
        });
      }
    }
}

}  // namespace

PNEUMO_KERNEL_BENCH("fused_bn", bench_fused_bn);
PNEUMO_KERNEL_BENCH("upsample_concat", bench_upsample_concat);
PNEUMO_KERNEL_BENCH("bottleneck_tail", bench_bottleneck_tail);

}  // namespace pneumo::kbench
