// BatchNorm2d on the CPU: training forward and running-statistics update against the formulas (biased
// variance to normalise, unbiased for the running update, momentum as PyTorch), evaluation with the running
// statistics, SWA's cumulative average (momentum = b/(n+b), sample-weighted), num_batches_tracked, and
// float64 gradient checks in training and evaluation, with and without affine parameters.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/check.h"
#include "nn/functional.h"
#include "nn/layers.h"
#include "support/checkers.h"

namespace pneumo {
namespace {

using ag::Variable;
namespace F = nn::F;

struct Moments {
  std::vector<double> mean, biased_var, unbiased_var;
};
Moments naive_moments(const Tensor& x) {
  const std::vector<double> v = x.to_vector_f64();
  const int64_t c = x.size(3), rows = x.numel() / c;
  Moments m{std::vector<double>(c, 0), std::vector<double>(c, 0), std::vector<double>(c, 0)};
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < c; ++k) m.mean[k] += v[r * c + k] / rows;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < c; ++k) m.biased_var[k] += (v[r * c + k] - m.mean[k]) * (v[r * c + k] - m.mean[k]);
  for (int64_t k = 0; k < c; ++k) {
    m.unbiased_var[k] = m.biased_var[k] / (rows - 1);
    m.biased_var[k] /= rows;
  }
  return m;
}

Tensor naive_normalise(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& var,
                       const std::vector<double>& w, const std::vector<double>& b, double eps) {
  std::vector<double> v = x.to_vector_f64();
  const int64_t c = x.size(3);
  for (size_t i = 0; i < v.size(); ++i) {
    const int64_t k = static_cast<int64_t>(i) % c;
    v[i] = (v[i] - mean[k]) / std::sqrt(var[k] + eps) * w[k] + b[k];
  }
  return Tensor::from_vector_f64(v, x.shape());
}

TEST(BatchNorm, TrainingForwardAndRunningUpdateMatchFormula) {
  Generator gen(3);
  nn::BatchNorm2d bn(5, 1e-5, 0.1);
  EXPECT_EQ(bn.type_name(), "BatchNorm2d");
  bn.weight().mutable_value().copy_from(Tensor::normal({5}, 1, 0.5, 1));
  bn.bias().mutable_value().copy_from(Tensor::normal({5}, 0, 0.5, 2));
  Tensor x = Tensor::normal({3, 4, 6, 5}, 2.0f, 3.0f, 4);
  Variable y = bn.forward(Variable(x));
  const Moments m = naive_moments(x);
  const std::vector<double> w = bn.weight().value().to_vector_f64(), b = bn.bias().value().to_vector_f64();
  PNEUMO_EXPECT_CLOSE(y.value(), naive_normalise(x, m.mean, m.biased_var, w, b, 1e-5), test::tolerance_for(DType::F32));
  std::vector<double> rm(5), rv(5);
  for (int k = 0; k < 5; ++k) {
    rm[k] = 0.9 * 0.0 + 0.1 * m.mean[k];
    rv[k] = 0.9 * 1.0 + 0.1 * m.unbiased_var[k];
  }
  PNEUMO_EXPECT_CLOSE(bn.running_mean(), Tensor::from_vector_f64(rm, {5}), test::tolerance_for(DType::F32));
  PNEUMO_EXPECT_CLOSE(bn.running_var(), Tensor::from_vector_f64(rv, {5}), test::tolerance_for(DType::F32));
  EXPECT_EQ(bn.num_batches_tracked().item(), 1.0);
  EXPECT_EQ(bn.num_batches_tracked().dtype(), DType::I64);
  bn.forward(Variable(x));
  EXPECT_EQ(bn.num_batches_tracked().item(), 2.0);
}

TEST(BatchNorm, EvaluationUsesRunningStatisticsAndLeavesThem) {
  nn::BatchNorm2d bn(4, 1e-3);
  bn.running_mean().copy_from(Tensor::from_vector({0.5f, -1.f, 2.f, 0.f}, {4}));
  bn.running_var().copy_from(Tensor::from_vector({1.5f, 0.25f, 4.f, 1.f}, {4}));
  bn.weight().mutable_value().copy_from(Tensor::from_vector({1.f, 2.f, -1.f, 0.5f}, {4}));
  bn.bias().mutable_value().copy_from(Tensor::from_vector({0.f, 1.f, 0.5f, -2.f}, {4}));
  bn.eval();
  Tensor x = Tensor::normal({2, 3, 3, 4}, 0, 2, 8);
  Variable y = bn.forward(Variable(x));
  PNEUMO_EXPECT_CLOSE(y.value(),
                      naive_normalise(x, {0.5, -1, 2, 0}, {1.5, 0.25, 4, 1}, {1, 2, -1, 0.5}, {0, 1, 0.5, -2}, 1e-3),
                      test::tolerance_for(DType::F32));
  EXPECT_EQ(bn.running_mean().to_vector(), std::vector<float>({0.5f, -1.f, 2.f, 0.f}));
  EXPECT_EQ(bn.num_batches_tracked().item(), 0.0);
}

TEST(BatchNorm, CumulativeAverageIsSampleWeighted) {
  // SWA's bn_update: momentum = b / (n + b). With batches of 2, 3 and 1 samples (same H, W) the running mean
  // is the mean over all 6 samples and the running var the sample-weighted mean of the unbiased batch vars.
  nn::BatchNorm2d bn(3);
  bn.running_mean().fill_(5.0);  // reset_running_stats must clear these
  bn.reset_running_stats();
  bn.set_cumulative_average(true);
  EXPECT_TRUE(bn.cumulative_average());
  const int64_t sizes[] = {2, 3, 1};
  std::vector<double> mean(3, 0), var(3, 0);
  int64_t total = 0;
  for (int i = 0; i < 3; ++i) {
    Tensor x = Tensor::normal({sizes[i], 4, 5, 3}, float(i), 1.f + i, 100 + i);
    ag::NoGradGuard no_grad;
    bn.forward(Variable(x));
    const Moments m = naive_moments(x);
    for (int k = 0; k < 3; ++k) {
      mean[k] += m.mean[k] * sizes[i];
      var[k] += m.unbiased_var[k] * sizes[i];
    }
    total += sizes[i];
  }
  for (int k = 0; k < 3; ++k) {
    mean[k] /= total;
    var[k] /= total;
  }
  PNEUMO_EXPECT_CLOSE(bn.running_mean(), Tensor::from_vector_f64(mean, {3}), test::tolerance_for(DType::F32));
  PNEUMO_EXPECT_CLOSE(bn.running_var(), Tensor::from_vector_f64(var, {3}), test::tolerance_for(DType::F32));
  EXPECT_EQ(bn.num_batches_tracked().item(), 3.0);
  // Back to the exponential average: momentum 0.1 again.
  bn.set_cumulative_average(false);
  Tensor x = Tensor::normal({2, 4, 5, 3}, 0, 1, 200);
  const std::vector<double> before = bn.running_mean().to_vector_f64();
  bn.forward(Variable(x));
  const Moments m = naive_moments(x);
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(bn.running_mean().to_vector_f64()[k], 0.9 * before[k] + 0.1 * m.mean[k], 1e-5);
}

TEST(BatchNorm, GradcheckTrainingAndEvaluation) {
  std::vector<Tensor> inputs{Tensor::normal({2, 3, 4, 3}, 0.5, 2, 1, 0, DType::F64),
                             Tensor::normal({3}, 1, 0.5, 2, 0, DType::F64), Tensor::normal({3}, 0, 1, 3, 0, DType::F64)};
  test::expect_gradcheck([](const std::vector<Variable>& v) {
    return F::batch_norm(v[0], v[1], v[2], nullptr, nullptr, true, 0.1, 1e-5);
  }, inputs);
  // With running buffers given (updated on each call; the output does not depend on them in training).
  Tensor rm = Tensor::zeros({3}, DType::F64), rv = Tensor::full({3}, 1.0, DType::F64);
  test::expect_gradcheck([&](const std::vector<Variable>& v) {
    return F::batch_norm(v[0], v[1], v[2], &rm, &rv, true, 0.1, 1e-5);
  }, inputs);
  Tensor em = Tensor::from_vector_f64({0.3, -0.2, 1.0}, {3}), ev = Tensor::from_vector_f64({0.5, 2.0, 1.5}, {3});
  test::expect_gradcheck([&](const std::vector<Variable>& v) {
    return F::batch_norm(v[0], v[1], v[2], &em, &ev, false, 0.1, 1e-5);
  }, inputs);
  // Without affine parameters.
  test::expect_gradcheck([](const std::vector<Variable>& v) {
    return F::batch_norm(v[0], Variable(), Variable(), nullptr, nullptr, true, 0.1, 1e-3);
  }, {inputs[0]});
}

TEST(BatchNorm, ParameterNamesAndBuffers) {
  nn::BatchNorm2d bn(7);
  auto p = bn.named_parameters();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].first, "weight");
  EXPECT_EQ(p[1].first, "bias");
  EXPECT_EQ(p[0].second.value().to_vector(), std::vector<float>(7, 1.f));
  EXPECT_EQ(p[1].second.value().to_vector(), std::vector<float>(7, 0.f));
  auto b = bn.named_buffers();
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].first, "running_mean");
  EXPECT_EQ(b[1].first, "running_var");
  EXPECT_EQ(b[2].first, "num_batches_tracked");
  EXPECT_EQ(b[2].second->numel(), 1);
  // A loaded num_batches_tracked is picked up (the host mirror re-reads a replaced buffer).
  bn.set_tensor("num_batches_tracked", Tensor::scalar(41, DType::I64));
  bn.forward(Variable(Tensor::normal({2, 2, 2, 7}, 0, 1, 5)));
  EXPECT_EQ(bn.num_batches_tracked().item(), 42.0);
}

TEST(BatchNorm, ErrorsNameTheProblem) {
  nn::BatchNorm2d bn(4);
  EXPECT_THROW(bn.forward(Variable(Tensor::zeros({2, 3, 3, 5}))), Error);
  try {
    bn.forward(Variable(Tensor::zeros({1, 1, 1, 4})));  // one value per channel: no unbiased variance
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more than 1 value per channel"), std::string::npos) << e.what();
  }
  Tensor rm = Tensor::zeros({4}), rv = Tensor::zeros({3});
  EXPECT_THROW(F::batch_norm(Variable(Tensor::zeros({2, 2, 2, 4})), Variable(), Variable(), &rm, &rv, false, 0.1, 1e-5),
               Error);
  EXPECT_THROW(F::batch_norm(Variable(Tensor::zeros({2, 2, 2, 4})), Variable(), Variable(), &rm, &rm, true, -1, 1e-5),
               Error);  // cumulative without a counter
}

}  // namespace
}  // namespace pneumo
