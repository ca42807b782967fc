// PyTorch parity: every layer against fixtures written by tests/fixtures/make_layer_fixtures.py (PyTorch 1.13,
// references computed in float64 from float32-exact inputs). Each case runs twice:
//  - float64: must match to 1e-10 (atol scaled by max(1, RMS of the reference), plus 1e-10 relative): the
//    formulas are the same, only summation order differs;
//  - float32: must match to 1e-5 (the same form): float32 rounding of sums of up to ~1,200 products stays
//    near sqrt(K) * 6e-8 ~ 2e-6 of the RMS, so 1e-5 leaves a margin without hiding a wrong formula (an
//    off-by-one tap or a biased/unbiased variance mix-up is >1e-2).
// Layouts are NHWC / KRSC in the files, so nothing is permuted here.
#include <gtest/gtest.h>

#include <string>

#include "nn/functional.h"
#include "nn/layers.h"
#include "support/checkers.h"
#include "support/npy_fixture.h"

namespace pneumo {
namespace {

using ag::Variable;
namespace F = nn::F;

test::NpyFixture fixture(const std::string& name) {
  return test::NpyFixture(std::string(PNEUMO_TEST_FIXTURES) + "/layers/" + name);
}

test::Tolerance tol(DType dt) { return test::tolerance_for(dt); }

Variable leaf(const Tensor& t, DType dt) { return Variable(t.to(dt), true); }

// Runs `fn` on the named inputs (as leaves of dtype dt), backpropagates gy and compares y and d<input>.
void check_case(const test::NpyFixture& fx, const std::vector<std::string>& inputs,
                const std::function<Variable(const std::vector<Variable>&)>& fn, DType dt) {
  SCOPED_TRACE(fx.dir() + " in " + dtype_name(dt));
  std::vector<Variable> vars;
  for (const auto& name : inputs) vars.push_back(leaf(fx.f64(name), dt));
  Variable y = fn(vars);
  ASSERT_EQ(y.dtype(), dt);
  PNEUMO_EXPECT_CLOSE(y.value(), fx.f64("y"), tol(dt));
  y.backward(fx.f64("gy").to(dt));
  for (size_t i = 0; i < inputs.size(); ++i) {
    SCOPED_TRACE("gradient of " + inputs[i]);
    ASSERT_TRUE(vars[i].grad().defined());
    PNEUMO_EXPECT_CLOSE(vars[i].grad(), fx.f64("d" + inputs[i]), tol(dt));
  }
}

class ConvParity : public ::testing::TestWithParam<std::string> {};

TEST_P(ConvParity, MatchesPyTorch) {
  const test::NpyFixture fx = fixture(GetParam());
  F::Conv2dGeometry g;
  g.stride_h = g.stride_w = fx.integer("stride");
  g.dilation_h = g.dilation_w = fx.integer("dilation");
  g.groups = fx.integer("groups");
  g.pad_top = fx.integer("pad_top");
  g.pad_bottom = fx.integer("pad_bottom");
  g.pad_left = fx.integer("pad_left");
  g.pad_right = fx.integer("pad_right");
  const bool bias = fx.integer("bias") != 0;
  if (fx.integer("same")) {  // our TF-same rule must reproduce the padding the script applied
    const Shape xs = fx.f64("x").shape(), ws = fx.f64("weight").shape();
    const F::SamePadding ph = F::tf_same_padding(xs[1], ws[1], g.stride_h, g.dilation_h);
    const F::SamePadding pw = F::tf_same_padding(xs[2], ws[2], g.stride_w, g.dilation_w);
    EXPECT_EQ(ph.before, g.pad_top);
    EXPECT_EQ(ph.after, g.pad_bottom);
    EXPECT_EQ(pw.before, g.pad_left);
    EXPECT_EQ(pw.after, g.pad_right);
  }
  std::vector<std::string> inputs{"x", "weight"};
  if (bias) inputs.push_back("bias");
  for (DType dt : {DType::F64, DType::F32})
    check_case(fx, inputs, [&](const std::vector<Variable>& v) {
      return F::conv2d(v[0], v[1], bias ? v[2] : Variable(), g);
    }, dt);
}

INSTANTIATE_TEST_SUITE_P(Layers, ConvParity,
                         ::testing::Values("conv_3x3_bias", "conv_3x3_s2_d2", "conv_1x1_s2", "conv_7x7_s2_stem",
                                           "conv_resnext_g32_s1", "conv_resnext_g32_s2",
                                           "conv_depthwise_3x3_s1_same", "conv_depthwise_5x5_s2_same",
                                           "conv_depthwise_3x3_s2_same", "conv_3x3_d3"));

// The module path (Conv2d::tf_same computing the padding from the input size) on the asymmetric case.
TEST(ConvParityModule, TfSameModuleMatchesPyTorch) {
  const test::NpyFixture fx = fixture("conv_depthwise_5x5_s2_same");
  auto conv = nn::Conv2d::tf_same(144, 144, 5, 2, 1, 144, false);
  EXPECT_EQ(conv->type_name(), "Conv2dStaticSamePadding");
  conv->set_tensor("weight", fx.f32("weight"));
  Variable y = conv->forward(Variable(fx.f32("x")));
  PNEUMO_EXPECT_CLOSE(y.value(), fx.f64("y"), tol(DType::F32));
}

TEST(BatchNormParity, TrainingMatchesPyTorch) {
  const test::NpyFixture fx = fixture("batch_norm_train");
  for (DType dt : {DType::F64, DType::F32}) {
    Tensor rm = fx.f64("running_mean").to(dt), rv = fx.f64("running_var").to(dt);
    check_case(fx, {"x", "weight", "bias"}, [&](const std::vector<Variable>& v) {
      return F::batch_norm(v[0], v[1], v[2], &rm, &rv, true, fx.num("momentum"), fx.num("eps"));
    }, dt);
    SCOPED_TRACE(dtype_name(dt));
    PNEUMO_EXPECT_CLOSE(rm, fx.f64("running_mean_after"), tol(dt));
    PNEUMO_EXPECT_CLOSE(rv, fx.f64("running_var_after"), tol(dt));
  }
}

TEST(BatchNormParity, EvaluationMatchesPyTorch) {
  const test::NpyFixture fx = fixture("batch_norm_eval");
  for (DType dt : {DType::F64, DType::F32}) {
    Tensor rm = fx.f64("running_mean").to(dt), rv = fx.f64("running_var").to(dt);
    check_case(fx, {"x", "weight", "bias"}, [&](const std::vector<Variable>& v) {
      return F::batch_norm(v[0], v[1], v[2], &rm, &rv, false, fx.num("momentum"), fx.num("eps"));
    }, dt);
    PNEUMO_EXPECT_CLOSE(rm, fx.f64("running_mean_after"), tol(dt));  // untouched in evaluation
    PNEUMO_EXPECT_CLOSE(rv, fx.f64("running_var_after"), tol(dt));
  }
}

TEST(BatchNormParity, CumulativeAverageMatchesPyTorchMomentumNone) {
  const test::NpyFixture fx = fixture("batch_norm_cumulative");
  const int64_t batches = fx.integer("batches");
  nn::BatchNorm2d bn(fx.f64("x0").size(3));
  bn.reset_running_stats();  // SWA's bn_update: reset, then average cumulatively
  bn.set_cumulative_average(true);
  bn.train();
  {
    ag::NoGradGuard no_grad;
    for (int64_t i = 0; i < batches; ++i) bn.forward(Variable(fx.f32("x" + std::to_string(i))));
  }
  PNEUMO_EXPECT_CLOSE(bn.running_mean(), fx.f64("running_mean_after"), tol(DType::F32));
  PNEUMO_EXPECT_CLOSE(bn.running_var(), fx.f64("running_var_after"), tol(DType::F32));
  EXPECT_EQ(bn.num_batches_tracked().item(), static_cast<double>(batches));
}

class PoolParity : public ::testing::TestWithParam<std::string> {};
TEST_P(PoolParity, MatchesPyTorch) {
  const test::NpyFixture fx = fixture(GetParam());
  for (DType dt : {DType::F64, DType::F32})
    check_case(fx, {"x"}, [&](const std::vector<Variable>& v) {
      return F::max_pool2d(v[0], fx.integer("kernel"), fx.integer("stride"), fx.integer("padding"),
                           fx.integer("ceil_mode") != 0);
    }, dt);
}
INSTANTIATE_TEST_SUITE_P(Layers, PoolParity,
                         ::testing::Values("max_pool_3x3_s2_ceil_even", "max_pool_3x3_s2_ceil_odd",
                                           "max_pool_3x3_s2_p1"));

class BilinearParity : public ::testing::TestWithParam<std::string> {};
TEST_P(BilinearParity, MatchesPyTorch) {
  const test::NpyFixture fx = fixture(GetParam());
  for (DType dt : {DType::F64, DType::F32})
    check_case(fx, {"x"}, [&](const std::vector<Variable>& v) {
      return F::resize_bilinear(v[0], fx.integer("out_h"), fx.integer("out_w"), fx.integer("align_corners") != 0);
    }, dt);
}
INSTANTIATE_TEST_SUITE_P(Layers, BilinearParity,
                         ::testing::Values("bilinear_up_ac1", "bilinear_up_ac0", "bilinear_down_ac1",
                                           "bilinear_down_ac0"));

TEST(SimpleParity, UpsampleNearest2x) {
  const test::NpyFixture fx = fixture("upsample_nearest2x");
  for (DType dt : {DType::F64, DType::F32})
    check_case(fx, {"x"}, [](const std::vector<Variable>& v) { return F::upsample_nearest2x(v[0]); }, dt);
}

TEST(SimpleParity, GlobalAvgPool) {
  const test::NpyFixture fx = fixture("global_avg_pool");
  for (DType dt : {DType::F64, DType::F32})
    check_case(fx, {"x"}, [](const std::vector<Variable>& v) { return F::global_avg_pool(v[0]); }, dt);
}

TEST(SimpleParity, Activations) {
  for (DType dt : {DType::F64, DType::F32}) {
    check_case(fixture("swish"), {"x"}, [](const std::vector<Variable>& v) { return F::swish(v[0]); }, dt);
    check_case(fixture("sigmoid"), {"x"}, [](const std::vector<Variable>& v) { return F::sigmoid(v[0]); }, dt);
    check_case(fixture("relu"), {"x"}, [](const std::vector<Variable>& v) { return F::relu(v[0]); }, dt);
  }
}

TEST(SimpleParity, Linear) {
  const test::NpyFixture fx = fixture("linear");
  for (DType dt : {DType::F64, DType::F32})
    check_case(fx, {"x", "weight", "bias"}, [](const std::vector<Variable>& v) {
      return F::linear(v[0], v[1], v[2]);
    }, dt);
}

}  // namespace
}  // namespace pneumo
