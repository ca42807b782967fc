// Tensor ops on the CPU against naive formulas, including broadcasting, reductions, GEMM and concat/split.
#include <gtest/gtest.h>

#include <cmath>

#include <omp.h>

#include "kernels/check.h"
#include "support/checkers.h"
#include "tensor/layer_ops.h"
#include "tensor/ops.h"

using namespace pneumo;

namespace {
Tensor rnd(const Shape& s, uint64_t seed, float lo = -2, float hi = 2, DType dt = DType::F32) {
  return Tensor::uniform(s, lo, hi, seed, 0, dt);
}
}  // namespace

TEST(Ops, BinaryBroadcastingMatchesFormula) {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor a = rnd({2, 3, 4, 5}, 1, -2, 2, dt), b = rnd({2, 3, 4, 5}, 2, 0.5, 2, dt);
    Tensor c = rnd({5}, 3, 0.5, 2, dt), s = rnd({1}, 4, 0.5, 2, dt);
    std::vector<double> va = a.to_vector_f64(), vb = b.to_vector_f64(), vc = c.to_vector_f64(), vs = s.to_vector_f64();
    auto check = [&](ops::BinaryOp op, const Tensor& x, const Tensor& y, auto formula) {
      Tensor out = ops::binary(op, x, y);
      ASSERT_EQ(out.shape(), a.shape());
      std::vector<double> vo = out.to_vector_f64();
      for (size_t i = 0; i < vo.size(); ++i) EXPECT_NEAR(vo[i], formula(i), 1e-6 * (1 + std::fabs(formula(i)))) << i;
    };
    check(ops::BinaryOp::Add, a, b, [&](size_t i) { return va[i] + vb[i]; });
    check(ops::BinaryOp::Sub, a, c, [&](size_t i) { return va[i] - vc[i % 5]; });
    check(ops::BinaryOp::Mul, a, s, [&](size_t i) { return va[i] * vs[0]; });
    check(ops::BinaryOp::Div, a, c, [&](size_t i) { return va[i] / vc[i % 5]; });
    check(ops::BinaryOp::Sub, s, a, [&](size_t i) { return vs[0] - va[i]; });  // scalar on the left
  }
  EXPECT_THROW(ops::add(Tensor::zeros({2, 3}), Tensor::zeros({2})), Error);
  EXPECT_THROW(ops::add(Tensor::zeros({2, 3}), Tensor::zeros({2, 3}, DType::F64)), Error);
}

TEST(Ops, UnaryMatchesFormula) {
  Tensor x = rnd({1001}, 5, 0.1f, 3.f);
  std::vector<float> v = x.to_vector();
  auto sig = [](double t) { return 1 / (1 + std::exp(-t)); };
  struct Case {
    ops::UnaryOp op;
    double (*f)(double);
  };
  std::vector<std::pair<ops::UnaryOp, std::function<double(double)>>> cases = {
      {ops::UnaryOp::Neg, [](double t) { return -t; }},
      {ops::UnaryOp::Exp, [](double t) { return std::exp(t); }},
      {ops::UnaryOp::Log, [](double t) { return std::log(t); }},
      {ops::UnaryOp::Sqrt, [](double t) { return std::sqrt(t); }},
      {ops::UnaryOp::Abs, [](double t) { return std::fabs(t); }},
      {ops::UnaryOp::Relu, [](double t) { return t > 0 ? t : 0; }},
      {ops::UnaryOp::Sigmoid, sig},
      {ops::UnaryOp::Tanh, [](double t) { return std::tanh(t); }},
      {ops::UnaryOp::Swish, [&](double t) { return t * sig(t); }},
  };
  for (auto& c : cases) {
    Tensor xin = c.first == ops::UnaryOp::Log || c.first == ops::UnaryOp::Sqrt ? x : ops::affine(x, 2.0, -3.0);
    std::vector<float> vin = xin.to_vector(), out = ops::unary(c.first, xin).to_vector();
    for (size_t i = 0; i < out.size(); ++i)
      EXPECT_NEAR(out[i], c.second(vin[i]), 2e-6 * (1 + std::fabs(c.second(vin[i])))) << ops::unary_name(c.first);
  }
}

// sigmoid/tanh backward from the saved output y, or (16-bit storage: autograd keeps x) from x: the same
// derivative, float32 and float64, the x form to relative precision even where y saturates.
TEST(Ops, SigmoidAndTanhBackwardFromInputEqualsFromOutput) {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor x = ops::affine(rnd({1001}, 11, 0.f, 1.f), 16.0, -8.0).to(dt), dy = rnd({1001}, 12, -1.f, 1.f).to(dt);
    for (ops::UnaryOp op : {ops::UnaryOp::Sigmoid, ops::UnaryOp::Tanh}) {
      Tensor y = ops::unary(op, x);
      std::vector<double> from_y = ops::unary_backward(op, Tensor(), y, dy).to_vector_f64();
      std::vector<double> from_x = ops::unary_backward(op, x, Tensor(), dy).to_vector_f64();
      std::vector<double> xs = x.to_vector_f64(), ds = dy.to_vector_f64();
      for (size_t i = 0; i < xs.size(); ++i) {
        const double ch = std::cosh(xs[i]);  // formulas without 1 - y, exact to double rounding
        const double want =
            ds[i] * (op == ops::UnaryOp::Sigmoid ? 1 / ((1 + std::exp(-xs[i])) * (1 + std::exp(xs[i]))) : 1 / (ch * ch));
        // from x: relative accuracy everywhere (no 1 - y); from y: absolute, |dy| ulp(1) near saturation.
        const double eps = dt == DType::F64 ? 2.3e-16 : 1.2e-7;
        EXPECT_NEAR(from_x[i], want, 8 * eps * std::fabs(want) + 1e-300) << ops::unary_name(op) << " x=" << xs[i];
        EXPECT_NEAR(from_y[i], want, 4 * eps * std::fabs(ds[i])) << ops::unary_name(op) << " x=" << xs[i];
      }
    }
  }
}

TEST(Ops, ReductionsMatchLoops) {
  Tensor x = rnd({3, 4, 5, 7}, 9);
  std::vector<double> v = x.to_vector_f64();
  double total = 0;
  for (double t : v) total += t;
  EXPECT_NEAR(ops::sum(x).item(), total, 1e-4);
  EXPECT_NEAR(ops::mean(x).item(), total / v.size(), 1e-6);
  std::vector<float> ch = ops::sum_channels(x).to_vector();
  std::vector<float> hw = ops::sum_hw(x).to_vector();
  ASSERT_EQ(ch.size(), 7u);
  ASSERT_EQ(hw.size(), 21u);
  for (int c = 0; c < 7; ++c) {
    double s = 0;
    for (size_t i = c; i < v.size(); i += 7) s += v[i];
    EXPECT_NEAR(ch[c], s, 1e-4);
  }
  for (int n = 0; n < 3; ++n)
    for (int c = 0; c < 7; ++c) {
      double s = 0;
      for (int p = 0; p < 20; ++p) s += v[(n * 20 + p) * 7 + c];
      EXPECT_NEAR(hw[n * 7 + c], s, 1e-4);
    }
  Tensor e = ops::expand_hw(ops::sum_hw(x), x.shape(), 0.5);
  EXPECT_NEAR(e.to_vector()[(2 * 20 + 13) * 7 + 4], 0.5 * hw[2 * 7 + 4], 1e-5);
}

TEST(Ops, GemmAllTransposesAgainstNaive) {
  for (int64_t m : {1, 7, 70}) {
    for (int64_t n : {1, 17, 33}) {
      for (int64_t k : {1, 5, 300}) {
        for (int t = 0; t < 4; ++t) {
          bool ta = t & 1, tb = t & 2;
          Tensor a = rnd(ta ? Shape{k, m} : Shape{m, k}, 11 + t), b = rnd(tb ? Shape{n, k} : Shape{k, n}, 12 + t);
          std::vector<double> va = a.to_vector_f64(), vb = b.to_vector_f64();
          std::vector<float> c = ops::matmul(a, b, ta, tb).to_vector();
          Tensor c64 = ops::matmul(a.to(DType::F64), b.to(DType::F64), ta, tb);
          std::vector<double> d = c64.to_vector_f64();
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
              double acc = 0;
              for (int64_t q = 0; q < k; ++q)
                acc += (ta ? va[q * m + i] : va[i * k + q]) * (tb ? vb[j * k + q] : vb[q * n + j]);
              ASSERT_NEAR(c[i * n + j], acc, 1e-4 * (1 + std::fabs(acc))) << m << "x" << n << "x" << k << " t" << t;
              ASSERT_NEAR(d[i * n + j], acc, 1e-10 * (1 + std::fabs(acc)));
            }
        }
      }
    }
  }
  EXPECT_THROW(ops::matmul(Tensor::zeros({2, 3}), Tensor::zeros({2, 3})), Error);
}

TEST(Ops, GemmLargeBlockedMatchesDouble) {
  // Crosses every blocking boundary (KC 256, MC 72, NC 2048 not reached; odd edges).
  Tensor a = rnd({301, 777}, 21), b = rnd({777, 143}, 22);
  Tensor c = ops::matmul(a, b);
  Tensor ref = ops::matmul(a.to(DType::F64), b.to(DType::F64));
  PNEUMO_EXPECT_CLOSE(c, ref, (test::Tolerance{1e-5, 1e-4}));
}

// A short-M GEMM (one M block) is split along N across threads; a grouped conv runs its groups on the
// threads: neither may change a single bit with the thread count.
TEST(Ops, GemmAndGroupedConvDoNotDependOnThreadCount) {
  Tensor a = rnd({5, 700}, 23), b = rnd({700, 3001}, 24);
  Tensor x = rnd({2, 20, 20, 64}, 25), w = rnd({64, 3, 3, 4}, 26);  // 16 groups of 4 channels
  layer_ops::Conv2dGeometry g;
  g.pad_top = g.pad_bottom = g.pad_left = g.pad_right = 1;
  g.groups = 16;
  const int saved = omp_get_max_threads();
  std::vector<std::vector<float>> runs;
  for (int threads : {1, 3}) {
    omp_set_num_threads(threads);
    Tensor y = layer_ops::conv2d_forward(x, w, g);
    runs.push_back(ops::matmul(a, b).to_vector());
    runs.push_back(y.to_vector());
    runs.push_back(layer_ops::conv2d_backward_data(y, w, x.shape(), g).to_vector());
    runs.push_back(layer_ops::conv2d_backward_weight(y, x, w.shape(), g).to_vector());
  }
  omp_set_num_threads(saved);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(runs[i], runs[i + 4]) << "result " << i;
  PNEUMO_EXPECT_CLOSE(ops::matmul(a, b), ops::matmul(a.to(DType::F64), b.to(DType::F64)), (test::Tolerance{1e-5, 1e-4}));
}

TEST(Ops, ConcatSplitRoundTrip) {
  Tensor a = rnd({2, 3, 3, 4}, 31), b = rnd({2, 3, 3, 1}, 32), c = rnd({2, 3, 3, 6}, 33);
  Tensor cat = ops::concat_channels({a, b, c});
  ASSERT_EQ(cat.shape(), (Shape{2, 3, 3, 11}));
  std::vector<float> vc = cat.to_vector(), va = a.to_vector();
  EXPECT_EQ(vc[11 * 5 + 2], va[4 * 5 + 2]);
  auto parts = ops::split_channels(cat, {4, 1, 6});
  EXPECT_EQ(parts[0].to_vector(), a.to_vector());
  EXPECT_EQ(parts[1].to_vector(), b.to_vector());
  EXPECT_EQ(parts[2].to_vector(), c.to_vector());
  EXPECT_THROW(ops::split_channels(cat, {4, 4}), Error);
  EXPECT_THROW(ops::concat_channels({a, rnd({2, 3, 4, 4}, 1)}), Error);
}

TEST(Ops, LowPrecisionCpuPathsRoundLikeCasts) {
  Tensor a = rnd({100}, 41), b = rnd({100}, 42);
  Tensor ref = ops::add(a, b).to(DType::BF16).to(DType::F32);
  Tensor got = ops::add(a.to(DType::BF16), b.to(DType::BF16)).to(DType::F32);
  PNEUMO_EXPECT_CLOSE(got, ref, (test::Tolerance{1e-2, 1e-2}));
}
