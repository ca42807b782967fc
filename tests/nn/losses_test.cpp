// The reference's losses on the CPU: forward against the formulas, float64 gradient checks, PyTorch
// parity (fixtures from the reference's own code), the dice clamp's zero gradient, extreme logits.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/gradcheck.h"
#include "kernels/check.h"
#include "nn/losses.h"
#include "nn/parity_fixtures.h"
#include "support/checkers.h"

using namespace pneumo;
using ag::Variable;
using V = std::vector<Variable>;

namespace {

Tensor r64(const Shape& s, uint64_t seed, double lo, double hi) {
  return Tensor::uniform(s, static_cast<float>(lo), static_cast<float>(hi), seed, 0, DType::F64);
}
Tensor mask64(const Shape& s, uint64_t seed, double p_one) {
  auto u = r64(s, seed, 0, 1).to_vector_f64();
  for (double& v : u) v = v < p_one ? 1.0 : 0.0;
  return Tensor::from_vector_f64(u, s);
}

double softplus(double z) { return std::log1p(std::exp(-std::fabs(z))) + std::max(z, 0.0); }
double sigmoid(double z) { return 1 / (1 + std::exp(-z)); }

double naive_bce(const std::vector<double>& x, const std::vector<double>& t) {
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += -(t[i] * std::log(sigmoid(x[i])) + (1 - t[i]) * std::log(1 - sigmoid(x[i])));
  return s / x.size();
}
double naive_focal(const std::vector<double>& x, const std::vector<double>& t, double gamma) {
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    double bce = x[i] - x[i] * t[i] + softplus(-x[i]);
    double z = -x[i] * (2 * t[i] - 1);
    s += bce * std::pow(sigmoid(z), gamma);  // exp(gamma * logsigmoid(z))
  }
  return s / x.size();
}
double naive_dice(const std::vector<double>& x, const std::vector<double>& t, int64_t B, double smooth) {
  const size_t M = x.size() / B;
  double score = 0;
  for (int64_t b = 0; b < B; ++b) {
    double pt = 0, pp = 0, tt = 0;
    for (size_t i = b * M; i < (b + 1) * M; ++i) {
      double p = sigmoid(x[i]);
      pt += p * t[i];
      pp += p * p;
      tt += t[i] * t[i];
    }
    score += 2 * (pt + smooth) / (pp + tt + smooth);
  }
  score /= B;
  return 1 - std::min(std::max(score, 0.0), 1 - 1e-7);
}

}  // namespace

TEST(Losses, ForwardMatchesFormulas) {
  Shape s{4, 5, 6, 1};
  Tensor x = r64(s, 1, -6, 6), t = mask64(s, 2, 0.4), soft = r64(s, 3, 0, 1);
  auto xv = x.to_vector_f64();
  for (const Tensor& tg : {t, soft}) {
    auto tv = tg.to_vector_f64();
    EXPECT_NEAR(nn::bce_with_logits(Variable(x), tg).value().item(), naive_bce(xv, tv), 1e-12);
    EXPECT_NEAR(nn::focal_loss(Variable(x), tg).value().item(), naive_focal(xv, tv, 2.0), 1e-12);
    EXPECT_NEAR(nn::focal_loss(Variable(x), tg, 3.0).value().item(), naive_focal(xv, tv, 3.0), 1e-12);
    EXPECT_NEAR(nn::soft_dice_loss(Variable(x), tg).value().item(), naive_dice(xv, tv, 4, 0.01), 1e-12);
  }
  // float32 logits: float32 loss, same value to float precision.
  Variable l32 = nn::soft_dice_loss(Variable(x.to(DType::F32)), t.to(DType::F32));
  EXPECT_EQ(l32.dtype(), DType::F32);
  EXPECT_EQ(l32.value().numel(), 1);
  EXPECT_NEAR(l32.value().item(), naive_dice(xv, t.to_vector_f64(), 4, 0.01), 1e-6);
}

TEST(Losses, GradcheckFloat64) {
  Shape s{3, 4, 5, 1};
  Tensor t = mask64(s, 12, 0.4), soft = r64(s, 13, 0, 1);
  for (const Tensor& tg : {t, soft}) {
    test::expect_gradcheck([&](const V& v) { return nn::bce_with_logits(v[0], tg); }, {r64(s, 11, -5, 5)});
    test::expect_gradcheck([&](const V& v) { return nn::focal_loss(v[0], tg); }, {r64(s, 14, -5, 5)});
    test::expect_gradcheck([&](const V& v) { return nn::soft_dice_loss(v[0], tg); }, {r64(s, 15, -3, 3)});
  }
  // One sample with an empty mask (the common case in pneumothorax data) and a non-default smooth.
  Tensor t2 = mask64(s, 16, 0.5);
  auto tv = t2.to_vector_f64();
  for (size_t i = 0; i < 20; ++i) tv[i] = 0;
  Tensor t3 = Tensor::from_vector_f64(tv, s);
  test::expect_gradcheck([&](const V& v) { return nn::soft_dice_loss(v[0], t3, 1.0); }, {r64(s, 17, -3, 3)});
}

TEST(Losses, MatchPyTorchReference) {
  test::ParityFixture f("losses.safetensors");
  struct Case {
    const char* name;
    int kind;  // 0 bce, 1 focal, 2 dice
  };
  for (Case c : {Case{"bce_cls", 0}, Case{"focal_cls", 1}, Case{"bce_soft", 0}, Case{"focal_soft", 1},
                 Case{"dice_seg", 2}, Case{"bce_seg", 0}, Case{"dice_saturated", 2}}) {
    SCOPED_TRACE(c.name);
    const std::string p = std::string(c.name) + ".";
    Variable x(f[p + "logits"], true);
    const Tensor& t = f[p + "targets"];
    Variable loss = c.kind == 0 ? nn::bce_with_logits(x, t) : c.kind == 1 ? nn::focal_loss(x, t) : nn::soft_dice_loss(x, t);
    loss.backward();
    // float32 on both sides; ours sums in double, PyTorch in float: 1e-5 relative (absolute part scaled by
    // the reference's RMS, see close_message).
    const test::Tolerance tol{1e-5, 1e-5};
    PNEUMO_EXPECT_CLOSE(loss.value().reshape({1}), f[p + "loss"], tol);
    PNEUMO_EXPECT_CLOSE(x.grad(), f[p + "grad"], tol);
  }
}

TEST(Losses, DiceClampSaturatedGivesZeroGradient) {
  // Confident, correct, all-foreground predictions: score = 2 (M + s) / (2M + s) > 1 -> clamped.
  Tensor x = Tensor::full({2, 4, 4, 1}, 30.0, DType::F64), t = Tensor::full({2, 4, 4, 1}, 1.0, DType::F64);
  Variable xv(x, true);
  Variable loss = nn::soft_dice_loss(xv, t);
  EXPECT_NEAR(loss.value().item(), 1e-7, 1e-15);
  loss.backward();
  for (double g : xv.grad().to_vector_f64()) EXPECT_EQ(g, 0.0);
}

TEST(Losses, ExtremeLogitsStayFinite) {
  Tensor x = Tensor::from_vector({-200.f, -50.f, 0.f, 50.f, 200.f, 88.f}, {6, 1});
  Tensor t = Tensor::from_vector({1.f, 1.f, 0.5f, 0.f, 0.f, 1.f}, {6, 1});
  for (int k = 0; k < 3; ++k) {
    Variable xv(x, true);
    Variable loss = k == 0 ? nn::bce_with_logits(xv, t) : k == 1 ? nn::focal_loss(xv, t) : nn::soft_dice_loss(xv, t);
    loss.backward();
    EXPECT_TRUE(std::isfinite(loss.value().item())) << k;
    for (float g : xv.grad().to_vector()) EXPECT_TRUE(std::isfinite(g)) << k;
  }
  // -200 with target 1: BCE is 200 (no overflow to inf), gradient -1/n.
  Variable xv(x, true);
  Variable loss = nn::bce_with_logits(xv, t);
  loss.backward();
  EXPECT_NEAR(xv.grad().to_vector()[0], -1.0 / 6, 1e-7);
}

TEST(Losses, BadInputsAreClearErrors) {
  Tensor x = Tensor::zeros({2, 3, 3, 1});
  EXPECT_THROW(nn::bce_with_logits(Variable(x), Tensor::zeros({2, 3, 3, 2})), Error);
  EXPECT_THROW(nn::soft_dice_loss(Variable(x), Tensor::zeros({3, 2, 3, 1})), Error);
  try {
    nn::focal_loss(Variable(x), Tensor::zeros({5}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[5]"), std::string::npos) << e.what();
  }
}
