// GPU vs CPU for every layer (pneumo::test::compare_gpu_cpu: outputs and input gradients, poisoned
// allocations), in float32 (1e-5) and bfloat16 (1e-2 of the RMS + 2e-2 relative), at the real shapes of the
// encoders: SE-ResNeXt50's grouped 3x3 (32 groups) at 1/4 and 1/8 of a 256x256 input, EfficientNet-B3's
// depthwise 3x3/5x5 convs at stride 1 and 2 with TF "same" (asymmetric) padding, the 7x7 stem, DeepLab's
// dilated 3x3. BF16 inputs are pre-rounded to bfloat16 so both backends see the same values (ties in max
// pooling included) and the comparison measures only the computation. BatchNorm runs BF16 activations with
// float32 parameters and statistics. Skipped without a CUDA device.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/math_mode.h"
#include "nn/functional.h"
#include "nn/layers.h"
#include "support/checkers.h"
#include "tensor/layer_ops.h"
#include "tensor/ops.h"

#if PNEUMO_WITH_CUDA
#include "kernels/cuda/conv_cudnn.h"
#endif

namespace pneumo {
namespace {

using ag::Variable;
namespace F = nn::F;

const DType kDTypes[] = {DType::F32, DType::BF16};

// N(0, std) values, rounded to bfloat16 when the GPU run uses bfloat16.
Tensor input(const Shape& s, float stddev, DType gpu_dtype, uint64_t salt = 0) {
  Tensor t = Tensor::normal(s, 0.f, stddev, test::fresh_seed() + salt);
  return gpu_dtype == DType::BF16 ? t.to(DType::BF16).to(DType::F32) : t;
}

test::GpuCheckOptions options(DType dt) {
  test::GpuCheckOptions o;
  o.gpu_dtype = dt;
  return o;
}

struct ConvCase {
  const char* name;
  int64_t n, h, w, c, k, kernel, stride, dilation, groups;
  bool same, bias;
};

// Padding: TF "same" when `same`, else symmetric (kernel-1)/2*dilation (PyTorch's usual choice).
const ConvCase kConvCases[] = {
    {"resnext50_layer1_g32_3x3_64x64", 2, 64, 64, 128, 128, 3, 1, 1, 32, false, false},
    {"resnext50_layer2_g32_3x3_s2", 2, 64, 64, 256, 256, 3, 2, 1, 32, false, false},
    {"resnext50_stem_7x7_s2", 2, 128, 128, 3, 64, 7, 2, 1, 1, false, false},
    {"resnext50_1x1_256_to_128", 2, 64, 64, 256, 128, 1, 1, 1, 1, false, false},
    {"resnext50_downsample_1x1_s2", 2, 64, 64, 256, 512, 1, 2, 1, 1, false, false},
    {"effb3_dw3x3_s1_40ch_same", 2, 128, 128, 40, 40, 3, 1, 1, 40, true, false},
    {"effb3_dw3x3_s2_144ch_same", 2, 128, 128, 144, 144, 3, 2, 1, 144, true, false},
    {"effb3_dw5x5_s2_192ch_same", 2, 64, 64, 192, 192, 5, 2, 1, 192, true, false},
    {"effb3_dw5x5_s1_288ch_same", 2, 32, 32, 288, 288, 5, 1, 1, 288, true, false},
    {"effb3_stem_3x3_s2_same", 2, 256, 256, 3, 40, 3, 2, 1, 1, true, false},
    {"deeplab_dilated_3x3_d2", 2, 32, 32, 256, 256, 3, 1, 2, 1, false, false},
    {"unet_head_3x3_bias_odd", 3, 37, 29, 16, 5, 3, 1, 1, 1, false, true},
};

class ConvGpu : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvGpu, MatchesCpu) {
  PNEUMO_REQUIRE_CUDA();
  const ConvCase c = GetParam();
  for (DType dt : kDTypes) {
    SCOPED_TRACE(dtype_name(dt));
    std::vector<Tensor> inputs{input({c.n, c.h, c.w, c.c}, 1.f, dt),
                               input({c.k, c.kernel, c.kernel, c.c / c.groups},
                                     1.f / std::sqrt(float(c.kernel * c.kernel * c.c / c.groups)), dt, 1)};
    if (c.bias) inputs.push_back(input({c.k}, 1.f, dt, 2));
    test::compare_gpu_cpu([c](const std::vector<Variable>& v) {
      F::Conv2dGeometry g = F::conv_geometry(c.stride, (c.kernel - 1) / 2 * c.dilation, c.dilation, c.groups);
      if (c.same) {
        const F::SamePadding ph = F::tf_same_padding(c.h, c.kernel, c.stride, c.dilation);
        const F::SamePadding pw = F::tf_same_padding(c.w, c.kernel, c.stride, c.dilation);
        g.pad_top = ph.before;
        g.pad_bottom = ph.after;
        g.pad_left = pw.before;
        g.pad_right = pw.after;
      }
      return F::conv2d(v[0], v[1], c.bias ? v[2] : Variable(), g);
    }, inputs, options(dt));
  }
}

INSTANTIATE_TEST_SUITE_P(Layers, ConvGpu, ::testing::ValuesIn(kConvCases),
                         [](const ::testing::TestParamInfo<ConvCase>& i) { return std::string(i.param.name); });

TEST(ConvGpuCache, AlgorithmChosenOncePerShapeAndBackwardDeterministic) {
  PNEUMO_REQUIRE_CUDA();
#if PNEUMO_WITH_CUDA
  Tensor x = Tensor::normal({2, 32, 32, 128}, 0, 1, 1).to(Device::cuda());
  Tensor w = Tensor::normal({128, 3, 3, 4}, 0, 0.1f, 2).to(Device::cuda());
  const F::Conv2dGeometry g = F::conv_geometry(1, 1, 1, 32);
  Tensor y = layer_ops::conv2d_forward(x, w, g);
  const size_t entries = kernels::cuda::conv_algorithm_cache_size();
  Tensor dy = Tensor::normal(y.shape(), 0, 1, 3).to(Device::cuda());
  Tensor dw1 = layer_ops::conv2d_backward_weight(dy, x, w.shape(), g);
  Tensor dx1 = layer_ops::conv2d_backward_data(dy, w, x.shape(), g);
  Tensor dw2 = layer_ops::conv2d_backward_weight(dy, x, w.shape(), g);
  Tensor dx2 = layer_ops::conv2d_backward_data(dy, w, x.shape(), g);
  EXPECT_EQ(kernels::cuda::conv_algorithm_cache_size(), entries);  // same shape: no new plan
  EXPECT_EQ(dw1.to_vector(), dw2.to_vector());  // deterministic algorithms only
  EXPECT_EQ(dx1.to_vector(), dx2.to_vector());
#endif
}

// The data gradient added into a given gradient (autograd's lent sums), in the convolution's pass (cuDNN
// beta = 1, PNEUMO_DGRAD_ACCUMULATE) and after it, against the CPU doing the same. Shapes no other test uses,
// so each dtype's first call is an accumulating one: its algorithm search must not write into the gradient
// being added to. Tolerances: the layer tests' (float32 1e-5 relative; bf16 1e-2 of the RMS + 2e-2 relative).
TEST(ConvGpuAccumulate, DataGradientAddedIntoAGivenGradientMatchesCpu) {
  PNEUMO_REQUIRE_CUDA();
  const bool was = kernels::dgrad_accumulate();
  struct Case {
    Shape x, w;
    F::Conv2dGeometry g;
  };
  const Case cases[] = {{{3, 21, 19, 48}, {40, 3, 3, 48}, F::conv_geometry(1, 1)},
                        {{2, 33, 17, 64}, {96, 1, 1, 64}, F::conv_geometry(1, 0)},
                        {{2, 34, 18, 72}, {72, 3, 3, 3}, F::conv_geometry(2, 1, 1, 24)}};
  for (DType dt : kDTypes)
    for (bool in_pass : {true, false})
      for (const Case& c : cases) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dt) << (in_pass ? " in the pass " : " after ") << shape_str(c.x)
                                          << " groups " << c.g.groups);
        kernels::set_dgrad_accumulate(in_pass);
        const Tensor w = input(c.w, 0.2f, dt, 1).to(dt);
        const Shape ys = layer_ops::conv2d_forward(Tensor::zeros(c.x), w.to(DType::F32), c.g).shape();
        const Tensor dy = input(ys, 1.f, dt, 2).to(dt), before = input(c.x, 1.f, dt, 3).to(dt);
        Tensor on_cpu = before.clone();
        layer_ops::conv2d_backward_data(dy, w, c.x, c.g, &on_cpu);
        Tensor on_gpu = before.to(Device::cuda());
        const Tensor r = layer_ops::conv2d_backward_data(dy.to(Device::cuda()), w.to(Device::cuda()), c.x, c.g, &on_gpu);
        EXPECT_TRUE(r.shares_storage(on_gpu));
        const Tensor ref = on_cpu.to(DType::F32), got = on_gpu.cpu().to(DType::F32);
        const double rms = std::sqrt(ops::mean(ops::mul(ref, ref)).item());
        const test::Tolerance tol = dt == DType::F32 ? test::tolerance_for(dt) : test::Tolerance{1e-2 * rms, 2e-2};
        PNEUMO_EXPECT_CLOSE(got, ref, tol);
      }
  kernels::set_dgrad_accumulate(was);
}

// ---- BatchNorm: BF16 activations with float32 weight/bias/statistics ----
Variable bn_fn(const std::vector<Variable>& v, bool training) {
  // Parameters back to float32 (the checker casts every input to the GPU dtype).
  const Variable w = v[1].dtype() == DType::F32 ? v[1] : ag::cast(v[1], DType::F32);
  const Variable b = v[2].dtype() == DType::F32 ? v[2] : ag::cast(v[2], DType::F32);
  const int64_t c = v[0].shape()[3];
  Tensor rm = Tensor::uniform({c}, -0.5f, 0.5f, 91, 0, DType::F32, v[0].device());
  Tensor rv = Tensor::uniform({c}, 0.5f, 2.0f, 92, 0, DType::F32, v[0].device());
  return F::batch_norm(v[0], w, b, &rm, &rv, training, 0.1, 1e-5);
}

TEST(BatchNormGpu, TrainingAndEvaluationMatchCpu) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kDTypes)
    for (bool training : {true, false})
      for (const Shape& s : {Shape{2, 64, 64, 128}, Shape{3, 17, 9, 40}, Shape{4, 8, 8, 1536}}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " training " << training << " " << shape_str(s));
        Tensor x = ops::affine(Tensor::normal(s, 0.f, 2.f, test::fresh_seed()), 1.0, 0.7);  // a non-zero mean
        if (dt == DType::BF16) x = x.to(DType::BF16).to(DType::F32);
        test::compare_gpu_cpu([training](const std::vector<Variable>& v) { return bn_fn(v, training); },
                              {x, input({s[3]}, 1.f, dt, 1), input({s[3]}, 1.f, dt, 2)}, options(dt));
      }
}

TEST(BatchNormGpu, RunningStatisticsAndCumulativeAverageMatchCpu) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kDTypes) {
    SCOPED_TRACE(dtype_name(dt));
    nn::BatchNorm2d cpu(64), gpu(64);
    gpu.to(Device::cuda());
    for (bool cumulative : {false, true}) {
      cpu.set_cumulative_average(cumulative);
      gpu.set_cumulative_average(cumulative);
      for (int i = 0; i < 3; ++i) {
        Tensor x = input({2 + i, 16, 16, 64}, 1.f + i, dt);
        ag::NoGradGuard no_grad;
        cpu.forward(Variable(x));
        gpu.forward(Variable(x.to(Device::cuda(), dt)));
      }
      PNEUMO_EXPECT_CLOSE(gpu.running_mean(), cpu.running_mean(), test::tolerance_for(dt));
      PNEUMO_EXPECT_CLOSE(gpu.running_var(), cpu.running_var(), test::tolerance_for(dt));
    }
    EXPECT_EQ(gpu.num_batches_tracked().item(), 6.0);
    EXPECT_EQ(gpu.running_mean().dtype(), DType::F32);
  }
}

// ---- pooling, resizing, dropout, linear, concat ----
TEST(PoolGpu, MaxPoolMatchesCpu) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kDTypes) {
    SCOPED_TRACE(dtype_name(dt));
    // The SE-ResNeXt stem pool (3x3 s2 ceil_mode) at 1/2 of 256, an odd size, and a padded pool.
    test::compare_gpu_cpu([](const std::vector<Variable>& v) { return F::max_pool2d(v[0], 3, 2, 0, true); },
                          {input({2, 128, 128, 64}, 1.f, dt)}, options(dt));
    test::compare_gpu_cpu([](const std::vector<Variable>& v) { return F::max_pool2d(v[0], 3, 2, 0, true); },
                          {input({3, 33, 30, 5}, 1.f, dt)}, options(dt));
    test::compare_gpu_cpu([](const std::vector<Variable>& v) { return F::max_pool2d(v[0], 3, 2, 1, false); },
                          {input({2, 31, 32, 7}, 1.f, dt)}, options(dt));
  }
}

TEST(PoolGpu, GlobalAvgPoolAndLinearMatchCpu) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kDTypes) {
    SCOPED_TRACE(dtype_name(dt));
    test::compare_gpu_cpu([](const std::vector<Variable>& v) { return F::global_avg_pool(v[0]); },
                          {input({2, 8, 8, 2048}, 1.f, dt)}, options(dt));
    test::compare_gpu_cpu([](const std::vector<Variable>& v) {
      return F::linear(F::global_avg_pool(v[0]), v[1], v[2]);
    }, {input({2, 4, 4, 1536}, 1.f, dt), input({1536, 1536}, 0.025f, dt, 1), input({1536}, 0.1f, dt, 2)}, options(dt));
  }
}

TEST(ResizeGpu, NearestAndBilinearMatchCpu) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kDTypes) {
    SCOPED_TRACE(dtype_name(dt));
    test::compare_gpu_cpu([](const std::vector<Variable>& v) { return F::upsample_nearest2x(v[0]); },
                          {input({2, 32, 32, 64}, 1.f, dt)}, options(dt));
    for (bool align : {true, false}) {
      SCOPED_TRACE(align);
      // DeepLabV3+'s x4 upsampling (64 -> 256), an odd up/down pair, b5's 768 -> 1024 on one channel.
      test::compare_gpu_cpu([align](const std::vector<Variable>& v) { return F::resize_bilinear(v[0], 256, 256, align); },
                            {input({2, 64, 64, 16}, 1.f, dt)}, options(dt));
      test::compare_gpu_cpu([align](const std::vector<Variable>& v) { return F::resize_bilinear(v[0], 13, 50, align); },
                            {input({2, 29, 17, 3}, 1.f, dt)}, options(dt));
      test::compare_gpu_cpu([align](const std::vector<Variable>& v) { return F::resize_bilinear(v[0], 1024, 1024, align); },
                            {input({1, 768, 768, 1}, 1.f, dt)}, options(dt));
    }
  }
}

TEST(DropoutGpu, SameMasksAsCpu) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kDTypes) {
    SCOPED_TRACE(dtype_name(dt));
    test::compare_gpu_cpu([](const std::vector<Variable>& v) {
      Generator g(1234);
      return F::dropout(v[0], 0.3, true, g);
    }, {input({4, 16, 16, 33}, 1.f, dt)}, options(dt));
    test::compare_gpu_cpu([](const std::vector<Variable>& v) {
      Generator g(99);
      return F::drop_connect(v[0], 0.2, true, g);
    }, {input({16, 8, 8, 24}, 1.f, dt)}, options(dt));
  }
  // With a device Philox state {seed, offset base} (how a CUDA Graph's draw runs), outside any graph: the
  // kernel draws at seed 1234, offset 40 + 2, the CPU's host values.
  Tensor state = Tensor::empty({2}, DType::I64);
  state.data<int64_t>()[0] = 1234;
  state.data<int64_t>()[1] = 40;
  const Tensor x = input({4, 16, 16, 33}, 1.f, DType::F32), xg = x.to(Device::cuda()), sg = state.to(Device::cuda());
  PNEUMO_EXPECT_CLOSE(layer_ops::dropout(xg, 0.3, 5, 2, sg).cpu(), layer_ops::dropout(x, 0.3, 1234, 42),
                      test::tolerance_for(DType::F32));
  PNEUMO_EXPECT_CLOSE(layer_ops::drop_connect(xg, 0.3, 5, 2, sg).cpu(), layer_ops::drop_connect(x, 0.3, 1234, 42),
                      test::tolerance_for(DType::F32));
}

TEST(ConcatGpu, MatchesCpu) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kDTypes)
    test::compare_gpu_cpu([](const std::vector<Variable>& v) { return F::concat({F::upsample_nearest2x(v[0]), v[1]}); },
                          {input({2, 16, 16, 256}, 1.f, dt), input({2, 32, 32, 64}, 1.f, dt, 1)}, options(dt));
}

}  // namespace
}  // namespace pneumo
