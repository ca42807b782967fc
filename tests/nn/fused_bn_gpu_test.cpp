// The fused BatchNorm CUDA kernels against the CPU oracle (kernels/cpu/fused_bn_kernels): BatchNorm+ReLU and
// the bottleneck tail (statistics + SE pool in one read, gate/residual/ReLU in one pass, one-reduce +
// one-elementwise backward), forward and input gradients, float32 and bfloat16, training and evaluation;
// shapes cover the 16-byte vector path (C a multiple of 4 / 8) and the scalar fallback (C = 12, 3), one
// channel tile and several (C = 1536), the one-read statistics under a large mean (shifted sums), and
// accumulation into an existing gradient. BF16 inputs are pre-rounded so both backends see the same values.
// Skipped without a CUDA device (fails under PNEUMO_REQUIRE_GPU=1).
#include <gtest/gtest.h>

#include "autograd/functions.h"
#include "autograd/layer_functions.h"
#include "nn/functional.h"
#include "support/checkers.h"
#include "tensor/fused_bn_ops.h"
#include "tensor/ops.h"

namespace pneumo {
namespace {

using ag::Variable;
namespace F = nn::F;

const DType kDTypes[] = {DType::F32, DType::BF16};

Tensor input(const Shape& s, float stddev, DType gpu_dtype, uint64_t salt, float offset = 0.f) {
  Tensor t = ops::affine(Tensor::normal(s, 0.f, stddev, test::fresh_seed() + salt), 1.0, offset);
  return gpu_dtype == DType::BF16 ? t.to(DType::BF16).to(DType::F32) : t;
}

test::GpuCheckOptions options(DType dt) {
  test::GpuCheckOptions o;
  o.gpu_dtype = dt;
  return o;
}

Variable as_f32(const Variable& v) { return v.dtype() == DType::F32 ? v : ag::cast(v, DType::F32); }

Variable bn_relu_fn(const std::vector<Variable>& v, bool training) {
  const int64_t c = v[0].shape()[3];
  Tensor rm = Tensor::uniform({c}, -0.5f, 0.5f, 91, 0, DType::F32, v[0].device());
  Tensor rv = Tensor::uniform({c}, 0.5f, 2.0f, 92, 0, DType::F32, v[0].device());
  return F::batch_norm_relu(v[0], as_f32(v[1]), as_f32(v[2]), &rm, &rv, training, 0.1, 1e-5);
}

TEST(FusedBnGpu, BatchNormReluMatchesCpu) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kDTypes)
    for (bool training : {true, false})
      for (const Shape& s : {Shape{2, 64, 64, 128}, Shape{3, 17, 9, 40}, Shape{4, 8, 8, 1536}, Shape{2, 33, 31, 16},
                             Shape{2, 9, 7, 12}, Shape{3, 5, 5, 3}}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " training " << training << " " << shape_str(s));
        test::compare_gpu_cpu([training](const std::vector<Variable>& v) { return bn_relu_fn(v, training); },
                              {input(s, 2.f, dt, 0, 0.7f), input({s[3]}, 1.f, dt, 1), input({s[3]}, 1.f, dt, 2)},
                              options(dt));
      }
}

// BatchNorm + swish keeping only x (F::batch_norm_swish): the unfused CUDA ops plus the backward's second
// BatchNorm apply, against the CPU.
TEST(FusedBnGpu, BatchNormSwishMatchesCpu) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kDTypes)
    for (bool training : {true, false})
      for (const Shape& s : {Shape{2, 64, 64, 96}, Shape{3, 17, 9, 40}, Shape{2, 9, 7, 12}}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " training " << training << " " << shape_str(s));
        test::compare_gpu_cpu(
            [training](const std::vector<Variable>& v) {
              const int64_t c = v[0].shape()[3];
              Tensor rm = Tensor::uniform({c}, -0.5f, 0.5f, 93, 0, DType::F32, v[0].device());
              Tensor rv = Tensor::uniform({c}, 0.5f, 2.0f, 94, 0, DType::F32, v[0].device());
              return F::batch_norm_swish(v[0], as_f32(v[1]), as_f32(v[2]), &rm, &rv, training, 0.1, 1e-3);
            },
            {input(s, 2.f, dt, 0, 0.7f), input({s[3]}, 1.f, dt, 1), input({s[3]}, 1.f, dt, 2)}, options(dt));
      }
}

TEST(FusedBnGpu, OneReadStatisticsUnderALargeMeanMatchCpu) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kDTypes) {
    SCOPED_TRACE(dtype_name(dt));
    // Mean 50, std 1: the shifted sums keep the variance (a plain sum of squares would lose ~2e-4 of it in
    // float32 per 1e6 values).
    Tensor x = input({4, 128, 128, 32}, 1.f, dt, 3, 50.f);
    layer_ops::FusedBnStatistics cpu = layer_ops::fused_bn_statistics(x, true, true);
    layer_ops::FusedBnStatistics gpu = layer_ops::fused_bn_statistics(x.to(Device::cuda(), dt), true, true);
    PNEUMO_EXPECT_CLOSE(gpu.mean.cpu(), cpu.mean, (test::Tolerance{1e-5, 1e-6}));
    PNEUMO_EXPECT_CLOSE(gpu.var.cpu(), cpu.var, (test::Tolerance{1e-5, 1e-4}));
    // Per-sample sums ~ hw * 50 = 8.2e5: 1e-4 of that (82) is above the worst float32 error of the shifted sum,
    // 16384 terms of |x - ref| < ~5: n * eps * sum|v| = 16384 * 6e-8 * 2.3e4 = 22 (arithmetic; was 1e-2, 8192).
    PNEUMO_EXPECT_CLOSE(gpu.sample_sum.cpu(), cpu.sample_sum, (test::Tolerance{1e-4, 1e-6}));
  }
}

TEST(FusedBnGpu, BackwardAccumulatesIntoAnExistingGradient) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kDTypes) {
    SCOPED_TRACE(dtype_name(dt));
    const Shape s{2, 32, 32, 64};
    Tensor x = input(s, 1.f, dt, 4), dy = input(s, 1.f, dt, 5), existing = input(s, 1.f, dt, 6);
    Tensor w = Tensor::normal({64}, 1, 0.3, 7);
    auto run = [&](const Tensor& xx, const Tensor& dd, const Tensor& ww, Tensor into) {
      layer_ops::FusedBnStatistics st = layer_ops::fused_bn_statistics(xx, true, false);
      Tensor y = layer_ops::fused_bn_apply(xx, st.mean, st.var, 1e-5, ww, Tensor(), Tensor(), Tensor(), true);
      return layer_ops::fused_bn_backward(dd, y, xx, st.mean, st.var, 1e-5, ww, true, true, true, &into).dx;
    };
    Tensor cpu = run(x, dy, w, existing.clone());
    Tensor gpu = run(x.to(Device::cuda(), dt), dy.to(Device::cuda(), dt), w.to(Device::cuda()),
                     existing.to(Device::cuda(), dt));
    PNEUMO_EXPECT_CLOSE(gpu.cpu().to(DType::F32), cpu, test::tolerance_for(dt));
  }
}

Variable tail_fn(const std::vector<Variable>& v, bool training) {
  const int64_t c = v[0].shape()[3];
  Tensor rm = Tensor::uniform({c}, -0.5f, 0.5f, 93, 0, DType::F32, v[0].device());
  Tensor rv = Tensor::uniform({c}, 0.5f, 2.0f, 94, 0, DType::F32, v[0].device());
  return F::bottleneck_tail(v[0], as_f32(v[1]), as_f32(v[2]), &rm, &rv, training, 0.1, 1e-5, nullptr, v[3], v[4],
                            v[5], v[6], kernels::Activation::Relu, v[7]);
}

TEST(FusedBnGpu, BottleneckTailMatchesCpu) {
  PNEUMO_REQUIRE_CUDA();
  struct Case {
    Shape s;
    int64_t r;
  };
  // SE-ResNeXt50 layer1 and layer4 tails (1/4 of 256 px), an odd size with the scalar path.
  for (DType dt : kDTypes)
    for (bool training : {true, false})
      for (const Case& k : {Case{{2, 64, 64, 256}, 16}, Case{{2, 8, 8, 2048}, 128}, Case{{3, 9, 7, 12}, 3}}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " training " << training << " " << shape_str(k.s));
        const int64_t c = k.s[3];
        test::compare_gpu_cpu([training](const std::vector<Variable>& v) { return tail_fn(v, training); },
                              {input(k.s, 1.5f, dt, 10, 0.3f), input({c}, 0.4f, dt, 11, 1.f), input({c}, 0.5f, dt, 12),
                               input({k.r, 1, 1, c}, 0.2f, dt, 13), input({k.r}, 0.3f, dt, 14),
                               input({c, 1, 1, k.r}, 0.2f, dt, 15), input({c}, 0.3f, dt, 16), input(k.s, 1.f, dt, 17)},
                              options(dt));
      }
}

TEST(FusedBnGpu, UpsampleConcatMatchesCpu) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kDTypes) {
    SCOPED_TRACE(dtype_name(dt));
    // UNet-SE50 decoder layer1 at 256 px (x 2048 channels at 8x8, skip 1024 at 16x16) and an odd case.
    test::compare_gpu_cpu([](const std::vector<Variable>& v) { return ag::upsample2x_concat(v[0], v[1]); },
                          {input({2, 8, 8, 2048}, 1.f, dt, 20), input({2, 16, 16, 1024}, 1.f, dt, 21)}, options(dt));
    test::compare_gpu_cpu([](const std::vector<Variable>& v) { return ag::upsample2x_concat(v[0], v[1]); },
                          {input({3, 5, 7, 3}, 1.f, dt, 22), input({3, 10, 14, 5}, 1.f, dt, 23)}, options(dt));
  }
}

}  // namespace
}  // namespace pneumo
