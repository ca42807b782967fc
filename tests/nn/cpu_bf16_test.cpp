// The CPU bfloat16 path (issue 12 part 1; design in docs/gpu-status.md): CPU BF16 tensors run the float32
// kernels on widened operands and round each output once, where the CUDA kernels round, so the network
// bf16 comparison can be reasoned about without a GPU.
//  - per op: the BF16 result is exactly round_bf16(the float32 result on the same bf16 values), within
//    the output rounding (relative L2 <= 2^-8) of it, and of dtype BF16;
//  - per network (eval, batch 2, 64x64, as ModelsGpu): CPU bf16 against CPU float32, figures printed for
//    docs/gpu-status.md, within regression bounds 2x over the measured figures.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "autograd/functions.h"
#include "kernels/math_mode.h"
#include "nn/functional.h"
#include "nn/models/registry.h"
#include "nn/models/weights_import.h"
#include "nn/squeeze_excite.h"
#include "support/checkers.h"
#include "tensor/fused_bn_ops.h"
#include "tensor/layer_ops.h"
#include "tensor/ops.h"
#include "tests/nn/model_fixture.h"
#include "tests/nn/network_compare.h"

namespace pneumo {
namespace {

using ag::Variable;

Tensor bf16_values(const Shape& s, float stddev, uint64_t seed) {
  return Tensor::normal(s, 0.f, stddev, seed).to(DType::BF16);
}

double relative_l2(const Tensor& a, const Tensor& r) {
  const std::vector<double> x = a.to_vector_f64(), y = r.to_vector_f64();
  double d = 0, q = 0;
  for (size_t i = 0; i < x.size(); ++i) d += (x[i] - y[i]) * (x[i] - y[i]), q += y[i] * y[i];
  return std::sqrt(d / std::max(q, 1e-300));
}

// bf16 result == the float32 result rounded once, and within 2^-8 (relative L2) of the float32 result.
void expect_rounded_once(const char* what, const Tensor& bf16_result, const Tensor& f32_result) {
  SCOPED_TRACE(what);
  ASSERT_EQ(bf16_result.dtype(), DType::BF16);
  ASSERT_EQ(bf16_result.shape(), f32_result.shape());
  EXPECT_EQ(bf16_result.to(DType::F32).to_vector(), f32_result.to(DType::BF16).to(DType::F32).to_vector());
  EXPECT_LE(relative_l2(bf16_result, f32_result), std::ldexp(1.0, -8));
}

// The bf16 data gradient added into a given gradient. Summed in the convolution's pass
// (PNEUMO_DGRAD_ACCUMULATE: cuDNN's beta = 1 blends in float32 before its one rounding), the float32 sum is
// rounded once; after it, the gradient is rounded and the bf16 add rounds again. Asymmetric padding (which the
// CUDA path cannot sum in the pass) rounds twice either way.
TEST(CpuBf16, ConvDataGradientAddedIntoAGivenGradient) {
  const bool was = kernels::dgrad_accumulate();
  const Tensor x = bf16_values({2, 9, 10, 16}, 1.f, 41), w = bf16_values({8, 3, 3, 16}, 0.2f, 42);
  layer_ops::Conv2dGeometry sym, asym;
  sym.pad_top = sym.pad_bottom = sym.pad_left = sym.pad_right = 1;
  asym.stride_h = asym.stride_w = 2;
  asym.pad_bottom = asym.pad_right = 1;
  for (const layer_ops::Conv2dGeometry& g : {sym, asym}) {
    const bool symmetric = g.pad_top == g.pad_bottom;
    SCOPED_TRACE(symmetric ? "symmetric padding" : "asymmetric padding");
    const Tensor dy = bf16_values(layer_ops::conv2d_forward(x, w, g).shape(), 1.f, 43);
    const Tensor before = bf16_values(x.shape(), 0.5f, 44);
    const Tensor fresh = layer_ops::conv2d_backward_data(dy.to(DType::F32), w.to(DType::F32), x.shape(), g);
    Tensor once = fresh.clone();
    ops::add_(once, before.to(DType::F32));
    once = once.to(DType::BF16);
    Tensor twice = before.clone();
    ops::add_(twice, fresh.to(DType::BF16));
    if (symmetric) {
      EXPECT_NE(once.to_vector(), twice.to_vector());  // the two roundings differ on these values
    }
    for (bool in_pass : {true, false}) {
      kernels::set_dgrad_accumulate(in_pass);
      Tensor into = before.clone();
      layer_ops::conv2d_backward_data(dy, w, x.shape(), g, &into);
      ASSERT_EQ(into.dtype(), DType::BF16);
      EXPECT_EQ(into.to_vector(), (in_pass && symmetric ? once : twice).to_vector()) << "in the pass: " << in_pass;
    }
  }
  kernels::set_dgrad_accumulate(was);
}

TEST(CpuBf16, LayerOpsRoundOnceAtTheOutput) {
  const Tensor x = bf16_values({2, 9, 10, 16}, 1.f, 1), w = bf16_values({8, 3, 3, 16}, 0.2f, 2);
  const Tensor xf = x.to(DType::F32), wf = w.to(DType::F32);
  layer_ops::Conv2dGeometry g;
  g.pad_top = g.pad_bottom = g.pad_left = g.pad_right = 1;
  const Tensor y = layer_ops::conv2d_forward(x, w, g);
  expect_rounded_once("conv2d_forward", y, layer_ops::conv2d_forward(xf, wf, g));
  const Tensor dy = bf16_values(y.shape(), 1.f, 3);
  expect_rounded_once("conv2d_backward_data", layer_ops::conv2d_backward_data(dy, w, x.shape(), g),
                      layer_ops::conv2d_backward_data(dy.to(DType::F32), wf, x.shape(), g));
  expect_rounded_once("conv2d_backward_weight", layer_ops::conv2d_backward_weight(dy, x, w.shape(), g),
                      layer_ops::conv2d_backward_weight(dy.to(DType::F32), xf, w.shape(), g));
  // BatchNorm: float32 statistics and parameters, output rounded.
  const layer_ops::MomentPair m = layer_ops::batch_norm_statistics(x);
  const layer_ops::MomentPair mf = layer_ops::batch_norm_statistics(xf);
  EXPECT_EQ(m.mean.dtype(), DType::F32);
  EXPECT_EQ(m.mean.to_vector(), mf.mean.to_vector());
  const Tensor bw = Tensor::normal({16}, 1, 0.3f, 4), bb = Tensor::normal({16}, 0, 0.3f, 5);
  expect_rounded_once("batch_norm_apply", layer_ops::batch_norm_apply(x, m.mean, m.var, 1e-5, bw, bb),
                      layer_ops::batch_norm_apply(xf, m.mean, m.var, 1e-5, bw, bb));
  const Tensor dx16 = bf16_values(x.shape(), 1.f, 6);
  layer_ops::BatchNormGrads gb = layer_ops::batch_norm_backward(dx16, x, m.mean, m.var, 1e-5, bw, true, true);
  layer_ops::BatchNormGrads gf =
      layer_ops::batch_norm_backward(dx16.to(DType::F32), xf, m.mean, m.var, 1e-5, bw, true, true);
  expect_rounded_once("batch_norm_backward dx", gb.dx, gf.dx);
  EXPECT_EQ(gb.dweight.dtype(), DType::F32);
  // The fused BatchNorm kernels take BF16 storage natively: the same single rounding.
  expect_rounded_once("fused_bn_apply",
                      layer_ops::fused_bn_apply(x, m.mean, m.var, 1e-5, bw, bb, Tensor(), Tensor(), true),
                      layer_ops::fused_bn_apply(xf, m.mean, m.var, 1e-5, bw, bb, Tensor(), Tensor(), true));
  // Pooling, upsampling, resizing, squeeze-excite, matmul.
  expect_rounded_once("max_pool2d", layer_ops::max_pool2d_forward(x, 3, 2, 1, false).y,
                      layer_ops::max_pool2d_forward(xf, 3, 2, 1, false).y);
  expect_rounded_once("upsample_nearest2x_backward", layer_ops::upsample_nearest2x_backward(bf16_values({2, 8, 8, 4}, 1, 7)),
                      layer_ops::upsample_nearest2x_backward(bf16_values({2, 8, 8, 4}, 1, 7).to(DType::F32)));
  expect_rounded_once("resize_bilinear", layer_ops::resize_bilinear_forward(x, 17, 13, true),
                      layer_ops::resize_bilinear_forward(xf, 17, 13, true));
  const Tensor w1 = bf16_values({4, 1, 1, 16}, 0.3f, 8), b1 = bf16_values({4}, 0.3f, 9);
  const Tensor w2 = bf16_values({16, 1, 1, 4}, 0.3f, 10), b2 = bf16_values({16}, 0.3f, 11);
  auto f = [](const Tensor& t) { return t.to(DType::F32); };
  expect_rounded_once("squeeze_excite_forward",
                      layer_ops::squeeze_excite_forward(x, w1, b1, w2, b2, kernels::Activation::Relu),
                      layer_ops::squeeze_excite_forward(xf, f(w1), f(b1), f(w2), f(b2), kernels::Activation::Relu));
  const Tensor a = bf16_values({5, 7}, 1, 12), b = bf16_values({7, 3}, 1, 13);
  expect_rounded_once("matmul", ops::matmul(a, b), ops::matmul(f(a), f(b)));
}

// CPU bf16 against CPU float32, eval, batch 2, 64x64 (ModelsGpu's eval setup), the GPU test's bf16 bounds.
// fixture_weights: the PyTorch twin's weights (tests/fixtures/models/<name>.weights.safetensors, as the
// ModelParity tests load them) instead of pneumo's default initialisation.
test::NetworkErrors bf16_against_f32(const std::string& name, uint64_t seed, bool fixture_weights = false) {
  nn::models::ModelOptions opt;
  opt.drop_connect_rate = 0.0;
  auto f32 = nn::models::create_model(name, opt);
  if (fixture_weights) {
    auto w = test::read_f32_safetensors(test::model_fixture_path(name + ".weights.safetensors"));
    const nn::models::ImportReport r = nn::models::import_pytorch_tensors(*f32, w, /*apply=*/true);
    EXPECT_TRUE(r.complete()) << r.summary();
  }
  auto b16 = test::copy_of(*f32, name, opt);
  Tensor input = Tensor::normal({2, 64, 64, 3}, 0, 1, seed);
  Tensor proj = test::projection_for(*f32, input, seed + 1);
  f32->eval();
  b16->eval();
  const test::NetworkRun r = test::run_network(*f32, input, proj, Device::cpu(), DType::F32);
  const test::NetworkRun b = test::run_network(*b16, input, proj, Device::cpu(), DType::BF16);
  const test::NetworkErrors e = test::compare_runs(b, r);
  test::print_errors(name + (fixture_weights ? " fixture weights" : "") + " cpu bf16/f32 eval", e);
  return e;
}

// Regression bounds, about 2x over this path's own figures (2026-12-07, seed 1000, both with the fused paths
// on and off; bench/reports/2026-12-07-cpu-bf16.md; the weights depend on the generator's state, so two
// runs differ): seg/cls 2.8e-2 (unet_se50 cls), input gradient 0.37 (tiny_unet_ef), parameter-gradient L2
// 0.19-0.22 (unet_se50), worst tensor / whole gradient: weights 0.11 (tiny_unet_se),
// SE 2.5e-4 (tiny_unet_se), BN/bias 7.1e-2 (tiny_cls_ef). They are ABOVE the GPU test's bf16 bounds
// (kBF16Eval: L2 0.2, SE group 1.2e-4), which came from the PyTorch emulation: pneumo's own bf16
// arithmetic, with no GPU in it, already moves unet_se50's parameter gradients by 0.22.
void expect_within_bf16_bounds(const test::NetworkErrors& e) {
  ASSERT_TRUE(e.names_match);
  EXPECT_LE(std::max(e.seg, e.cls), 5e-2);
  EXPECT_LE(e.input_grad, 0.75);
  EXPECT_LE(e.grads_l2, 0.45);
  EXPECT_LE(e.group_worst[0], 0.25);
  EXPECT_LE(e.group_worst[1], 5e-4);
  EXPECT_LE(e.group_worst[2], 0.15);
}

TEST(CpuBf16, TinyNetworksAgainstFloat32) {
  for (const char* n : {"tiny_unet_se", "tiny_unet_ef", "tiny_deeplab_se", "tiny_cls_ef"}) {
    SCOPED_TRACE(n);
    expect_within_bf16_bounds(bf16_against_f32(n, 1000));
  }
}

// With the PyTorch twins' weights the same arithmetic lands where the PyTorch bf16 emulation did (whose
// figures set the GPU test's kBF16Eval bounds): the networks' bf16 error depends on the weights far more
// than on the backend. Bounds: kBF16Eval (tests/nn/models_gpu_test.cpp). Measured 2026-12-07, seed 1000:
// L2 4.2e-2 / 8.0e-2 / 2.6e-2, input grad 0.25 / 0.63 / 0.16 (tiny_unet_se / tiny_deeplab_se / tiny_unet_ef):
// the input gradient of tiny_deeplab_se exceeds kBF16Eval's 0.5, so it is bounded at 2x its figure here.
TEST(CpuBf16, TinyNetworksWithPyTorchWeightsWithinTheEmulationBounds) {
  for (const char* n : {"tiny_unet_se", "tiny_deeplab_se", "tiny_unet_ef"}) {
    SCOPED_TRACE(n);
    const test::NetworkErrors e = bf16_against_f32(n, 1000, true);
    ASSERT_TRUE(e.names_match);
    EXPECT_LE(std::max(e.seg, e.cls), 5e-2);
    EXPECT_LE(e.input_grad, std::string(n) == "tiny_deeplab_se" ? 1.3 : 0.5);
    EXPECT_LE(e.grads_l2, 0.2);
    EXPECT_LE(e.group_worst[0], 0.15);
    EXPECT_LE(e.group_worst[1], 1.2e-4);
    EXPECT_LE(e.group_worst[2], 0.15);
  }
}

TEST(CpuBf16Full, UnetSE50AgainstFloat32) { expect_within_bf16_bounds(bf16_against_f32("unet_se50", 1000)); }

}  // namespace
}  // namespace pneumo
