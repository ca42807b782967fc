// The fused squeeze-excite op and module on the CPU: forward against a naive formula, float64 gradient
// check of all five inputs for both activations, PyTorch parity (timm SEModule), module naming and loading.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "autograd/gradcheck.h"
#include "kernels/check.h"
#include "nn/checkpoint.h"
#include "nn/parity_fixtures.h"
#include "nn/squeeze_excite.h"
#include "support/checkers.h"

using namespace pneumo;
using ag::Variable;
using V = std::vector<Variable>;

namespace {

Tensor r64(const Shape& s, uint64_t seed, double lo = -1, double hi = 1) {
  return Tensor::uniform(s, static_cast<float>(lo), static_cast<float>(hi), seed, 0, DType::F64);
}

// y = x * sigmoid(W2 act(W1 mean_hw x + b1) + b2), written out directly.
std::vector<double> naive_se(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2,
                             bool swish) {
  const int64_t N = x.size(0), HW = x.size(1) * x.size(2), C = x.size(3), R = w1.size(0);
  auto xv = x.to_vector_f64(), w1v = w1.to_vector_f64(), b1v = b1.to_vector_f64(), w2v = w2.to_vector_f64(),
       b2v = b2.to_vector_f64();
  std::vector<double> y(xv.size());
  for (int64_t n = 0; n < N; ++n) {
    std::vector<double> pooled(C, 0.0), h(R), gate(C);
    for (int64_t i = 0; i < HW; ++i)
      for (int64_t c = 0; c < C; ++c) pooled[c] += xv[(n * HW + i) * C + c] / HW;
    for (int64_t r = 0; r < R; ++r) {
      double z = b1v[r];
      for (int64_t c = 0; c < C; ++c) z += w1v[r * C + c] * pooled[c];
      h[r] = swish ? z / (1 + std::exp(-z)) : std::max(z, 0.0);
    }
    for (int64_t c = 0; c < C; ++c) {
      double z = b2v[c];
      for (int64_t r = 0; r < R; ++r) z += w2v[c * R + r] * h[r];
      gate[c] = 1 / (1 + std::exp(-z));
    }
    for (int64_t i = 0; i < HW; ++i)
      for (int64_t c = 0; c < C; ++c) y[(n * HW + i) * C + c] = xv[(n * HW + i) * C + c] * gate[c];
  }
  return y;
}

std::vector<Tensor> se_inputs(int64_t N, int64_t H, int64_t W, int64_t C, int64_t R, uint64_t seed) {
  return {r64({N, H, W, C}, seed, -2, 2), r64({R, 1, 1, C}, seed + 1), r64({R}, seed + 2, -0.5, 0.5),
          r64({C, 1, 1, R}, seed + 3), r64({C}, seed + 4, -0.5, 0.5)};
}

}  // namespace

TEST(SqueezeExcite, ForwardMatchesNaiveFormula) {
  for (auto act : {nn::SEActivation::ReLU, nn::SEActivation::Swish}) {
    for (DType dt : {DType::F64, DType::F32}) {
      auto in = se_inputs(3, 4, 5, 8, 3, 11);
      Variable y = nn::squeeze_excite(Variable(in[0].to(dt)), Variable(in[1].to(dt)), Variable(in[2].to(dt)),
                                      Variable(in[3].to(dt)), Variable(in[4].to(dt)), act);
      EXPECT_EQ(y.shape(), in[0].shape());
      EXPECT_EQ(y.dtype(), dt);
      auto want = naive_se(in[0], in[1], in[2], in[3], in[4], act == nn::SEActivation::Swish);
      Tensor ref = Tensor::from_vector_f64(want, in[0].shape());
      // F64: the same math in another order (1e-12); F32: float rounding of inputs/outputs (1e-6).
      test::Tolerance tol = dt == DType::F64 ? test::Tolerance{1e-12, 1e-12} : test::Tolerance{1e-6, 1e-6};
      PNEUMO_EXPECT_CLOSE(y.value(), ref, tol);
    }
  }
}

TEST(SqueezeExcite, GradcheckFloat64BothActivations) {
  auto relu = [](const V& v) { return nn::squeeze_excite(v[0], v[1], v[2], v[3], v[4], nn::SEActivation::ReLU); };
  auto swish = [](const V& v) { return nn::squeeze_excite(v[0], v[1], v[2], v[3], v[4], nn::SEActivation::Swish); };
  test::expect_gradcheck(swish, se_inputs(2, 3, 4, 6, 3, 21));
  test::expect_gradcheck(swish, se_inputs(1, 1, 1, 5, 2, 31));  // one pixel
  // ReLU: biases keep the pre-activations away from the kink (|z1| >= ~0.3 for these inputs).
  auto in = se_inputs(2, 3, 4, 6, 3, 41);
  in[2] = ag::random_away_from({3}, -1.5, 1.5, {0.0}, 0.6, 42);
  test::expect_gradcheck(relu, in);
  // 2-D weight form [R, C] / [C, R] too.
  auto in2 = se_inputs(2, 2, 2, 4, 2, 51);
  in2[1] = in2[1].reshape({2, 4});
  in2[3] = in2[3].reshape({4, 2});
  test::expect_gradcheck(swish, in2);
}

TEST(SqueezeExcite, MatchesPyTorchSEModule) {
  test::ParityFixture f("squeeze_excite.safetensors");
  for (std::string act : {"relu", "swish"}) {
    SCOPED_TRACE(act);
    const std::string p = "se_" + act + ".";
    V in{Variable(f[p + "x"], true), Variable(f[p + "fc1.weight"], true), Variable(f[p + "fc1.bias"], true),
         Variable(f[p + "fc2.weight"], true), Variable(f[p + "fc2.bias"], true)};
    Variable y = nn::squeeze_excite(in[0], in[1], in[2], in[3], in[4],
                                    act == "relu" ? nn::SEActivation::ReLU : nn::SEActivation::Swish);
    y.backward(f[p + "dy"]);
    // float32 vs float32: both sides round differently (PyTorch float sums, ours double): 1e-5 relative.
    const test::Tolerance tol{1e-5, 1e-5};
    PNEUMO_EXPECT_CLOSE(y.value(), f[p + "y"], tol);
    PNEUMO_EXPECT_CLOSE(in[0].grad(), f[p + "dx"], tol);
    PNEUMO_EXPECT_CLOSE(in[1].grad(), f[p + "fc1.weight.grad"], tol);
    PNEUMO_EXPECT_CLOSE(in[2].grad(), f[p + "fc1.bias.grad"], tol);
    PNEUMO_EXPECT_CLOSE(in[3].grad(), f[p + "fc2.weight.grad"], tol);
    PNEUMO_EXPECT_CLOSE(in[4].grad(), f[p + "fc2.bias.grad"], tol);
  }
}

TEST(SqueezeExcite, ModuleNamesShapesAndCheckpointLoad) {
  nn::SqueezeExcite se(16, 4, nn::SEActivation::ReLU);
  auto params = se.named_parameters();
  ASSERT_EQ(params.size(), 4u);
  EXPECT_EQ(params[0].first, "fc1.weight");
  EXPECT_EQ(params[0].second.shape(), (Shape{4, 1, 1, 16}));
  EXPECT_EQ(params[1].first, "fc1.bias");
  EXPECT_EQ(params[2].first, "fc2.weight");
  EXPECT_EQ(params[2].second.shape(), (Shape{16, 1, 1, 4}));
  EXPECT_EQ(params[3].first, "fc2.bias");
  EXPECT_EQ(se.parameter_count(), 4 * 16 + 4 + 16 * 4 + 16);
  // PyTorch Conv2d default init bound 1/sqrt(fan_in).
  for (double v : params[0].second.value().to_vector_f64()) EXPECT_LE(std::fabs(v), 0.25 + 1e-7);

  nn::SqueezeExcite eff(16, 4, nn::SEActivation::Swish, {"conv_reduce", "conv_expand"});
  EXPECT_EQ(eff.named_parameters()[0].first, "conv_reduce.weight");
  EXPECT_EQ(eff.named_parameters()[3].first, "conv_expand.bias");

  // Load the PyTorch weights by name and run the module: same output as the fixture.
  test::ParityFixture f("squeeze_excite.safetensors");
  const std::string path = testing::TempDir() + "se_module.safetensors";
  nn::save_safetensors(path, {{"fc1.weight", f["se_relu.fc1.weight"]}, {"fc1.bias", f["se_relu.fc1.bias"]},
                              {"fc2.weight", f["se_relu.fc2.weight"]}, {"fc2.bias", f["se_relu.fc2.bias"]}});
  nn::LoadReport report = nn::load_state(se, path);
  EXPECT_TRUE(report.ok()) << report.str();
  Variable y = se(Variable(f["se_relu.x"]));
  PNEUMO_EXPECT_CLOSE(y.value(), f["se_relu.y"], (test::Tolerance{1e-5, 1e-5}));
  std::remove(path.c_str());
}

TEST(SqueezeExcite, BadShapesAreClearErrors) {
  auto in = se_inputs(1, 2, 2, 6, 3, 61);
  auto call = [&](const Tensor& x, const Tensor& w1, const Tensor& w2) {
    nn::squeeze_excite(Variable(x), Variable(w1), Variable(in[2]), Variable(w2), Variable(in[4]),
                       nn::SEActivation::ReLU);
  };
  try {
    call(in[0], r64({3, 1, 1, 5}, 1), in[3]);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[3, 1, 1, 5]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(call(in[0].reshape({4, 6}), in[1], in[3]), Error);           // not NHWC
  EXPECT_THROW(call(in[0], in[1], r64({6, 1, 1, 2}, 2)), Error);            // fc2 of another width
  EXPECT_THROW(call(in[0], in[1].to(DType::F32), in[3]), Error);            // mixed dtypes
  nn::SqueezeExcite se(8, 2, nn::SEActivation::Swish);
  EXPECT_THROW(se(Variable(Tensor::zeros({1, 2, 2, 6}))), Error);
}
